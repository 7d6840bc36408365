//! The admin console (`/admin`): HTTP-level security tests, and end-to-end
//! tests that drive a real headless Chromium through chromedriver.
#![allow(clippy::unwrap_used)]

mod browser;
mod common;
mod listing;
mod security;
