//! `invalidator`: see the README.
