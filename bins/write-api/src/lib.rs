//! `write-api`: see the README.
