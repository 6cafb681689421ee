//! The library's error: what stopped a stream run, a channel's start or a flow, with its source
//! kept typed so the retry class comes from the source ([`Classify`]) and no caller has to read
//! a message's text to decide what to do.

use crate::channel::http::ChannelError;
use crate::config::ConfigError;
use crate::daemon::workers::JobError;
use crate::odoo::OdooError;
use crate::retry::{Classify, RetryClass};
use crate::store::StoreError;

/// What went wrong. Every message names the thing and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Odoo(#[from] OdooError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Receive(#[from] crate::webhook::intake::ReceiveError),
    /// A peer answered with something marketsync cannot read (a missing field, a wrong type);
    /// `detail` names the peer, the thing and what to do.
    #[error("{detail}")]
    Unreadable { peer: &'static str, detail: String },
    /// Input that is not what it must be (a snapshot, an argument, a value in the state file).
    #[error("{0}")]
    Invalid(String),
    /// A rule of the product stopped the work on purpose (a price in the wrong currency, a
    /// catalog read that would have pushed nothing but zeros); the message says what to do.
    #[error("{0}")]
    Refused(String),
    /// The same error, with what marketsync was doing when it happened.
    #[error("{context}: {source}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    pub fn unreadable(peer: &'static str, detail: impl Into<String>) -> Self {
        Error::Unreadable {
            peer,
            detail: detail.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Error::Refused(message.into())
    }

    /// This error, said to have happened while doing `context` ("reading Odoo's field
    /// definitions").
    pub fn context(self, context: impl Into<String>) -> Self {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }
}

impl Classify for Error {
    fn retry_class(&self) -> RetryClass {
        match self {
            Error::Odoo(e) => e.retry_class(),
            Error::Channel(e) => e.retry_class(),
            Error::Job(e) => e.retry_class(),
            // A busy or briefly unwritable state file clears by itself; a schema problem does not,
            // but then the daemon does not get this far.
            Error::Store(_) | Error::Receive(_) => RetryClass::Transient,
            Error::Config(_) | Error::Unreadable { .. } | Error::Invalid(_) | Error::Refused(_) => {
                RetryClass::Permanent
            }
            Error::Context { source, .. } => source.retry_class(),
        }
    }
}

/// `.context("...")` on any result whose error converts into [`Error`].
pub trait Context<T> {
    fn context(self, context: impl Into<String>) -> Result<T, Error>;
}

impl<T, E: Into<Error>> Context<T> for Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T, Error> {
        self.map_err(|e| e.into().context(context))
    }
}

impl From<Error> for JobError {
    fn from(e: Error) -> Self {
        match e {
            Error::Job(j) => j,
            other => JobError::from_error(&other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_class_comes_from_the_source_through_context() {
        let e = Error::from(ChannelError::new(RetryClass::Auth, "Cartona said 401"))
            .context("pulling orders");
        assert_eq!(e.retry_class(), RetryClass::Auth);
        assert_eq!(e.to_string(), "pulling orders: Cartona said 401");
        assert_eq!(
            Error::refused("no").retry_class(),
            RetryClass::Permanent,
            "a refusal is not retried by the queue"
        );
        let job: JobError = Error::from(ChannelError::new(RetryClass::Transient, "timeout")).into();
        assert_eq!(job.class, RetryClass::Transient);
    }
}
