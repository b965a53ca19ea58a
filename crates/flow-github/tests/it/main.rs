//! flow-github against local wiremock servers speaking GitHub's wire format.

mod client;
