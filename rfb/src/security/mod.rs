//! Security types. Each type's crypto lives in its own file; the handshake steps that use
//! them are in the connection state machine.

pub mod vnc_auth;

pub const INVALID: u8 = 0;
pub const NONE: u8 = 1;
pub const VNC_AUTH: u8 = 2;

/// SecurityResult values.
pub const RESULT_OK: u32 = 0;
pub const RESULT_FAILED: u32 = 1;
