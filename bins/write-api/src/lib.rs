//! `write-api`: the admin API (the command side). See the README.

pub mod seed;
