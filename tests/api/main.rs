//! One integration binary: every test starts a real server on port 0 and talks to it over real
//! sockets.

mod auth;
mod bench;
mod browser;
mod client;
mod emit;
mod helpers;
mod hostile;
mod medusa;
mod operations;
mod redis;
mod resume;
mod shutdown;
mod transports;
