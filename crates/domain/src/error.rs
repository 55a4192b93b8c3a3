//! Why a rule refused a command. Each error names the request field at fault, so the wire
//! layer can tell the client exactly what to change.

use crate::EmailAddress;

/// The broad class of a refusal; the wire layer maps each to one status and error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleErrorKind {
    /// A mandatory field is absent.
    Missing,
    /// A value is well-formed but not acceptable here (400).
    Invalid,
    /// The request conflicts with other data, such as an address another account has (409).
    Conflict,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    pub kind: RuleErrorKind,
    pub field: String,
    /// A sentence for the client that starts with the field name.
    pub message: String,
}

impl RuleError {
    pub fn missing(field: impl Into<String>) -> Self {
        let field = field.into();
        Self {
            kind: RuleErrorKind::Missing,
            message: format!("{field} is mandatory"),
            field,
        }
    }
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: RuleErrorKind::Invalid,
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: RuleErrorKind::Conflict,
            field: field.into(),
            message: message.into(),
        }
    }
    /// The one answer for an address that another account holds, wherever it is found
    /// (by a rule, or by the database's unique key when another request won the race). It
    /// says nothing of which account, or of which organization.
    pub fn address_taken(field: &str, address: &EmailAddress) -> Self {
        Self::conflict(
            field,
            format!("{field} {address} already belongs to another account"),
        )
    }
}
