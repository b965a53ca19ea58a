//! Round-trips and validation of action.yml samples.
