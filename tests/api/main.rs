//! One integration binary: every test starts a real server on port 0 and talks to it over real
//! sockets.

mod auth;
mod browser;
mod client;
mod emit;
mod first_run;
mod helpers;
mod hostile;
mod kit;
mod listen;
mod operations;
mod redis;
mod resume;
mod shutdown;
mod transports;
