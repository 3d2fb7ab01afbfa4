//! What the benches (`benches/*.rs`) share beyond the tests' helpers: in-process viewer
//! connections and screens for the encoding benches, and for the side-by-side bench a measuring
//! RFB client, server processes and `perf` profiles. A server's CPU time is [`crate::cpu`].

pub mod profile;
pub mod rfb_client;
pub mod screens;
pub mod servers;
pub mod viewers;
