//! Odoo's faults as typed errors, whatever the protocol: XML-RPC fault codes 1-4, JSON-RPC
//! `error.data.name`, JSON-2 HTTP statuses all land on the same variants, and each knows its
//! retry class.

use crate::retry::{Classify, RetryClass};

#[derive(Debug, Clone, thiserror::Error)]
pub enum OdooError {
    #[error("Odoo rejected the login for user {user:?} on database {database:?}: check odoo.username and odoo.api_key")]
    LoginRejected { user: String, database: String },
    #[error("Odoo denied access ({0}): the API key may have been revoked or expired; check odoo.api_key")]
    AccessDenied(String),
    #[error("Odoo refused the operation for lack of rights: {0}")]
    AccessError(String),
    #[error("Odoo record missing: {0}")]
    MissingRecord(String),
    #[error("Odoo refused the values: {0}")]
    Validation(String),
    #[error("Odoo has no model {0:?} (is the module installed?)")]
    UnknownModel(String),
    #[error("Odoo has no such method: {0}")]
    UnknownMethod(String),
    #[error("Odoo has no such field: {0}")]
    UnknownField(String),
    /// The method ran but returned None, which XML-RPC cannot carry (the change is committed).
    #[error("Odoo method returned nothing (None)")]
    NoneResult,
    #[error("Odoo server error: {0}")]
    Server(String),
    #[error("Odoo answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("cannot reach Odoo at {url}: {message}")]
    Connection { url: String, message: String },
    #[error("Odoo did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("unexpected answer from Odoo: {0}")]
    Protocol(String),
}

impl Classify for OdooError {
    fn retry_class(&self) -> RetryClass {
        match self {
            OdooError::LoginRejected { .. }
            | OdooError::AccessDenied(_)
            | OdooError::AccessError(_) => RetryClass::Auth,
            OdooError::MissingRecord(_)
            | OdooError::Validation(_)
            | OdooError::UnknownModel(_)
            | OdooError::UnknownMethod(_)
            | OdooError::UnknownField(_)
            | OdooError::NoneResult => RetryClass::Permanent,
            OdooError::Server(msg) => {
                // Database hiccups and serialization conflicts pass; code errors do not.
                if [
                    "OperationalError",
                    "SerializationFailure",
                    "could not serialize",
                    "LockNotAvailable",
                    "deadlock",
                ]
                .iter()
                .any(|s| msg.contains(s))
                {
                    RetryClass::Transient
                } else {
                    RetryClass::Permanent
                }
            }
            OdooError::Http { status, .. } => {
                RetryClass::from_status(*status, None).unwrap_or(RetryClass::Transient)
            }
            OdooError::Connection { .. } | OdooError::Timeout(_) | OdooError::Protocol(_) => {
                RetryClass::Transient
            }
        }
    }
}

impl OdooError {
    /// True when Odoo itself could not be reached (as opposed to answering with an error).
    pub fn is_unreachable(&self) -> bool {
        match self {
            OdooError::Connection { .. } | OdooError::Timeout(_) | OdooError::Protocol(_) => true,
            OdooError::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// The last meaningful line of a Python traceback (`ValueError: Invalid field ...`).
pub fn traceback_tail(text: &str) -> &str {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// Classifies by Odoo's exception name and message (JSON-RPC `data.name`, JSON-2 `name`).
pub fn from_exception(name: &str, message: &str) -> OdooError {
    let msg = message.to_string();
    match name {
        "odoo.exceptions.AccessDenied" => OdooError::AccessDenied(msg),
        "odoo.exceptions.AccessError" => OdooError::AccessError(msg),
        "odoo.exceptions.MissingError" => OdooError::MissingRecord(msg),
        "odoo.exceptions.UserError"
        | "odoo.exceptions.ValidationError"
        | "odoo.exceptions.RedirectWarning"
        | "odoo.exceptions.Warning" => classify_user_error(msg),
        "builtins.AttributeError" if msg.contains("does not exist") => {
            OdooError::UnknownMethod(msg)
        }
        "builtins.ValueError" if msg.starts_with("Invalid field") => OdooError::UnknownField(msg),
        "builtins.KeyError" => OdooError::UnknownModel(msg),
        "werkzeug.exceptions.Unauthorized" => OdooError::AccessDenied(msg),
        "werkzeug.exceptions.NotFound"
            if msg.contains("model") && msg.contains("does not exist") =>
        {
            OdooError::UnknownModel(msg)
        }
        "werkzeug.exceptions.NotFound" if msg.contains("method") => OdooError::UnknownMethod(msg),
        _ => OdooError::Server(format!("{name}: {msg}")),
    }
}

/// Code-2 faults carry a plain message; a few of them mean something more precise.
pub fn classify_user_error(msg: String) -> OdooError {
    if msg.starts_with("Object ") && msg.ends_with(" doesn't exist") {
        OdooError::UnknownModel(msg)
    } else if msg.starts_with("Record does not exist or has been deleted") {
        OdooError::MissingRecord(msg)
    } else {
        OdooError::Validation(msg)
    }
}

/// Maps an XML-RPC fault (`/xmlrpc/2`: int codes 1-4) onto the typed errors.
pub fn from_xmlrpc_fault(code: i64, string: &str) -> OdooError {
    match code {
        2 => classify_user_error(string.to_string()),
        3 => OdooError::AccessDenied(string.to_string()),
        4 => OdooError::AccessError(string.to_string()),
        _ => {
            let tail = traceback_tail(string);
            if tail.contains("cannot marshal None") {
                OdooError::NoneResult
            } else if tail.starts_with("AttributeError:") && tail.contains("does not exist") {
                OdooError::UnknownMethod(tail.trim_start_matches("AttributeError: ").to_string())
            } else if tail.starts_with("ValueError: Invalid field") {
                OdooError::UnknownField(tail.trim_start_matches("ValueError: ").to_string())
            } else {
                OdooError::Server(tail.to_string())
            }
        }
    }
}
