//! kubernetes provider (in progress)
