//! VNC Authentication (security type 2): DES challenge/response.
//!
//! The scheme is weak (8-byte password, single DES, no salt); it exists because every VNC
//! client speaks it. Transport security must come from elsewhere (TLS, `wss://`, a VPN).

use des::Des;
use des::cipher::{Block, BlockEncrypt, KeyInit};
use subtle::ConstantTimeEq;

/// Length of the server's random challenge and of the client's response.
pub const CHALLENGE_LEN: usize = 16;

/// The DES key: the password truncated or zero-padded to 8 bytes, each byte bit-reversed
/// because the protocol treats the lowest bit of a byte as the first key bit.
fn des_key(password: &[u8]) -> [u8; 8] {
    let mut key = [0u8; 8];
    for (k, &p) in key.iter_mut().zip(password) {
        *k = p.reverse_bits();
    }
    key
}

/// The response a correct client computes for `challenge` with `password`.
pub fn expected_response(password: &[u8], challenge: &[u8; CHALLENGE_LEN]) -> [u8; CHALLENGE_LEN] {
    let cipher = Des::new(&des_key(password).into());
    let mut response = *challenge;
    // ECB: the two 8-byte halves are encrypted independently.
    for half in response.chunks_exact_mut(8) {
        cipher.encrypt_block(Block::<Des>::from_mut_slice(half));
    }
    response
}

/// Checks a client's response in constant time, so timing does not leak how many bytes matched.
pub fn verify_response(password: &[u8], challenge: &[u8; CHALLENGE_LEN], response: &[u8; CHALLENGE_LEN]) -> bool {
    expected_response(password, challenge).ct_eq(response).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
    const RESPONSE: [u8; 16] =
        [0xb8, 0x66, 0x92, 0x41, 0x25, 0xc8, 0xee, 0xbb, 0x9d, 0xeb, 0xc1, 0xdb, 0x61, 0xc5, 0x38, 0xe2];

    #[test]
    fn key_is_bit_reversed_and_padded() {
        assert_eq!(des_key(b"password"), [0x0e, 0x86, 0xce, 0xce, 0xee, 0xf6, 0x4e, 0x26]);
        assert_eq!(des_key(b"ab"), [0x86, 0x46, 0, 0, 0, 0, 0, 0]);
        assert_eq!(des_key(b""), [0; 8]);
    }

    #[test]
    fn known_test_vector() {
        assert_eq!(expected_response(b"password", &CHALLENGE), RESPONSE);
        assert!(verify_response(b"password", &CHALLENGE, &RESPONSE));
    }

    #[test]
    fn only_first_eight_bytes_matter() {
        assert_eq!(expected_response(b"password123", &CHALLENGE), RESPONSE);
        assert!(verify_response(b"password123", &CHALLENGE, &RESPONSE));
        assert_ne!(expected_response(b"passwor", &CHALLENGE), RESPONSE);
    }

    #[test]
    fn halves_are_independent_blocks() {
        let mut swapped = [0u8; 16];
        swapped[..8].copy_from_slice(&CHALLENGE[8..]);
        swapped[8..].copy_from_slice(&CHALLENGE[..8]);
        let r = expected_response(b"password", &swapped);
        assert_eq!(r[..8], RESPONSE[8..]);
        assert_eq!(r[8..], RESPONSE[..8]);
    }

    #[test]
    fn empty_password_uses_all_zero_key() {
        let response = expected_response(b"", &CHALLENGE);
        assert_eq!(response, expected_response(&[0u8; 8], &CHALLENGE));
        assert_ne!(response, CHALLENGE);
        assert!(verify_response(b"", &CHALLENGE, &response));
        assert!(!verify_response(b"password", &CHALLENGE, &response));
    }

    #[test]
    fn wrong_response_rejected() {
        let mut bad = RESPONSE;
        bad[15] ^= 1;
        assert!(!verify_response(b"password", &CHALLENGE, &bad));
        assert!(!verify_response(b"Password", &CHALLENGE, &RESPONSE));
        assert!(!verify_response(b"password", &CHALLENGE, &[0; 16]));
    }
}
