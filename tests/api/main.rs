//! One integration binary: every test starts a real server on port 0 and talks to it over real
//! sockets.

// The helpers are shared by every module of this one test binary; their `pub` is about
// organisation, not an API, so the workspace's unreachable-pub lint does not apply here.
#![allow(unreachable_pub)]

mod auth;
mod browser;
mod client;
mod deploy;
mod edge;
mod emit;
mod emit_command;
mod figures;
mod first_run;
mod helpers;
mod hostile;
mod listen;
mod medusa;
mod operations;
mod presence;
mod protocol_examples;
mod receipts;
mod redis;
mod redis_managed;
mod redis_sentinel;
mod redis_stall;
mod resume;
mod shutdown;
mod top;
mod transports;
mod upgrade;
