//! Tests of the data readers.
