//! The hostile-client suite: each test attacks a fresh `tiers up` process
//! the way a careless or malicious client would, and checks that the
//! process stays up, answers a clear error where one is due, and stays
//! within a stated bound of memory (RSS) or CPU time, both read from
//! `/proc/PID` of the server process.

mod harness;

mod ap;
mod db;
mod web;
