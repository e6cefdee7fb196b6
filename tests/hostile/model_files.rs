//! (filled by the issue-12 work on this class)
