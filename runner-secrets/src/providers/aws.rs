//! aws provider (in progress)
