//! `read-api`: see the README.
