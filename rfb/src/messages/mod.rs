//! Wire messages: client→server parsing ([`client`]) and server→client writing ([`server`]).

pub mod client;
pub mod server;
