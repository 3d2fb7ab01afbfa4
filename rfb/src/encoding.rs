//! Encoding numbers and what a client's SetEncodings says it can take.

pub const RAW: i32 = 0;
pub const COPY_RECT: i32 = 1;
pub const RRE: i32 = 2;
pub const HEXTILE: i32 = 5;
pub const ZLIB: i32 = 6;
pub const TIGHT: i32 = 7;
pub const ZRLE: i32 = 16;
/// Each rect one complete JFIF image of the rect's size, no length prefix (RealVNC's; noVNC
/// 1.4 and TigerVNC 1.16 decode it).
pub const JPEG: i32 = 21;

pub const DESKTOP_SIZE: i32 = -223;
pub const LAST_RECT: i32 = -224;
pub const QEMU_EXTENDED_KEY_EVENT: i32 = -258;
/// Keyboard LED state as a U8 (QEMU).
pub const QEMU_LED_STATE: i32 = -261;
/// Keyboard LED state as a U32 with the same bits (VMware; TigerVNC's fallback).
pub const VMWARE_LED_STATE: i32 = 0x574d_5668;
pub const EXTENDED_DESKTOP_SIZE: i32 = -308;
pub const FENCE: i32 = -312;
pub const CONTINUOUS_UPDATES: i32 = -313;
/// PointerEvent may carry back/forward in an extra byte.
pub const EXTENDED_MOUSE_BUTTONS: i32 = -316;

/// Quality level pseudo-encodings -32 (level 0) ..= -23 (level 9).
pub const QUALITY_LEVEL_0: i32 = -32;
/// Compression level pseudo-encodings -256 (level 0) ..= -247 (level 9).
pub const COMPRESS_LEVEL_0: i32 = -256;

/// Real (pixel-carrying) encodings this server can produce, in no particular order: the
/// client's list decides which one it gets.
pub const IMPLEMENTED: &[i32] = &[RAW, HEXTILE, ZLIB, TIGHT, ZRLE, JPEG];
/// Implemented encodings that can carry nothing but lossy pixels (Tight is lossless unless the
/// client sent a quality level).
pub const LOSSY: &[i32] = &[JPEG];

/// A name for logs and status reports.
pub fn name(encoding: i32) -> &'static str {
    match encoding {
        RAW => "Raw",
        COPY_RECT => "CopyRect",
        RRE => "RRE",
        HEXTILE => "Hextile",
        ZLIB => "Zlib",
        TIGHT => "Tight",
        ZRLE => "ZRLE",
        JPEG => "JPEG",
        _ => "other",
    }
}

/// Everything learned from the client's latest SetEncodings. Replaced, never merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientEncodings {
    /// The list exactly as the client sent it.
    pub list: Vec<i32>,
    /// First real encoding in the list that we implement; Raw when none is.
    pub preferred: i32,
    /// First real encoding in the list that we implement and that is not lossy only; Raw when
    /// none is. What a viewer preferring JPEG (21) gets when pixels must arrive exactly (the
    /// lossless refresh) or it cannot take JPEG (less than 16 bits per pixel).
    pub lossless: i32,
    pub last_rect: bool,
    pub desktop_size: bool,
    pub extended_desktop_size: bool,
    pub qemu_key_events: bool,
    pub qemu_led_state: bool,
    pub vmware_led_state: bool,
    pub extended_mouse_buttons: bool,
    pub fence: bool,
    /// Advertised only together with Fence (the fences pace pushed updates).
    pub continuous_updates: bool,
    /// 0..=9, first occurrence wins (as TigerVNC does).
    pub quality_level: Option<u8>,
    /// 0..=9, first occurrence wins.
    pub compress_level: Option<u8>,
}

impl ClientEncodings {
    pub fn from_list(list: Vec<i32>) -> Self {
        let preferred = list.iter().copied().find(|e| IMPLEMENTED.contains(e)).unwrap_or(RAW);
        let lossless = list.iter().copied().find(|e| IMPLEMENTED.contains(e) && !LOSSY.contains(e)).unwrap_or(RAW);
        let level = |base: i32| list.iter().find(|&&e| (base..=base + 9).contains(&e)).map(|&e| (e - base) as u8);
        Self {
            preferred,
            lossless,
            last_rect: list.contains(&LAST_RECT),
            desktop_size: list.contains(&DESKTOP_SIZE),
            extended_desktop_size: list.contains(&EXTENDED_DESKTOP_SIZE),
            qemu_key_events: list.contains(&QEMU_EXTENDED_KEY_EVENT),
            qemu_led_state: list.contains(&QEMU_LED_STATE),
            vmware_led_state: list.contains(&VMWARE_LED_STATE),
            extended_mouse_buttons: list.contains(&EXTENDED_MOUSE_BUTTONS),
            fence: list.contains(&FENCE),
            continuous_updates: list.contains(&CONTINUOUS_UPDATES) && list.contains(&FENCE),
            quality_level: level(QUALITY_LEVEL_0),
            compress_level: level(COMPRESS_LEVEL_0),
            list,
        }
    }

    /// Raw is always allowed; anything else only when listed.
    pub fn allows(&self, encoding: i32) -> bool {
        encoding == RAW || self.list.contains(&encoding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferred_skips_pseudo_and_unimplemented() {
        // noVNC-like: CopyRect first, then encodings we may not implement, then Raw.
        let e = ClientEncodings::from_list(vec![COPY_RECT, 50, RRE, RAW, -26, -254, LAST_RECT]);
        assert_eq!(e.preferred, RAW);
        assert!(e.last_rect);
        assert_eq!(e.quality_level, Some(6));
        assert_eq!(e.compress_level, Some(2));
        assert!(!e.allows(HEXTILE + 100));
    }

    #[test]
    fn remmina_best_quality_gets_zlib() {
        // Remmina's "Best" and KRDC's "High" list nothing better than Zlib and Hextile.
        assert_eq!(ClientEncodings::from_list(vec![COPY_RECT, ZLIB, HEXTILE, RAW]).preferred, ZLIB);
        assert_eq!(ClientEncodings::from_list(vec![COPY_RECT, HEXTILE, ZLIB, RAW]).preferred, HEXTILE);
        assert_eq!(ClientEncodings::from_list(vec![ZRLE, ZLIB, HEXTILE]).preferred, ZRLE);
    }

    #[test]
    fn jpeg_preferred_with_a_lossless_fallback() {
        // RealVNC-like: JPEG first, lossless ones after it.
        let e = ClientEncodings::from_list(vec![JPEG, ZRLE, HEXTILE, RAW, -24]);
        assert_eq!((e.preferred, e.lossless), (JPEG, ZRLE));
        // Only JPEG listed: Raw is always allowed.
        let e = ClientEncodings::from_list(vec![JPEG]);
        assert_eq!((e.preferred, e.lossless), (JPEG, RAW));
        // noVNC lists Tight (and more) before JPEG: Tight wins, and is its own lossless fallback.
        let e = ClientEncodings::from_list(vec![COPY_RECT, 50, TIGHT, 8, ZRLE, JPEG, HEXTILE, RAW]);
        assert_eq!((e.preferred, e.lossless), (TIGHT, TIGHT));
        let e = ClientEncodings::from_list(vec![HEXTILE, JPEG]);
        assert_eq!((e.preferred, e.lossless), (HEXTILE, HEXTILE));
        assert_eq!(ClientEncodings::from_list(vec![]).lossless, RAW);
        assert_eq!(name(JPEG), "JPEG");
    }

    #[test]
    fn first_level_wins() {
        let e = ClientEncodings::from_list(vec![-24, -30, -250, -256]);
        assert_eq!(e.quality_level, Some(8));
        assert_eq!(e.compress_level, Some(6));
        assert_eq!(ClientEncodings::from_list(vec![]).quality_level, None);
    }
}
