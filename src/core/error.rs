//! The core's error type and its stable codes.
//!
//! Every fallible core entry point returns [`CoreError`]; the wasm boundary maps
//! [`CoreError::code`] once to the public `ErrorCode` of `API.md`. Messages never
//! carry secrets or message content.

use thiserror::Error;

/// A stable, public error code (the `ErrorCode` union of `API.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The caller passed something malformed.
    InvalidArgument,
    /// An account id that the directory does not know.
    UnknownAccount,
    /// A conversation id that this client does not hold.
    UnknownConversation,
    /// The content is over a size limit.
    PayloadTooLarge,
    /// A message could not be decrypted.
    DecryptFailed,
    /// A peer sent something that breaks the protocol.
    Protocol,
    /// Stored state does not authenticate or decode.
    StoreCorrupt,
    /// Not (or no longer) a member of the conversation.
    NotAMember,
    /// The group's permissions do not allow this member the change.
    PermissionDenied,
    /// Too many requests at once; try again shortly.
    RateLimited,
    /// A link code that is malformed, used, expired or answered by nobody.
    InvalidLink,
    /// This installation was removed from its account by another installation.
    InstallationRemoved,
    /// A contact card that is malformed or does not verify.
    InvalidCard,
    /// The account is blocked.
    Blocked,
}

impl ErrorCode {
    /// The code as the public API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::UnknownAccount => "UNKNOWN_ACCOUNT",
            ErrorCode::UnknownConversation => "UNKNOWN_CONVERSATION",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::DecryptFailed => "DECRYPT_FAILED",
            ErrorCode::Protocol => "PROTOCOL",
            ErrorCode::StoreCorrupt => "STORE_CORRUPT",
            ErrorCode::NotAMember => "NOT_A_MEMBER",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::InvalidLink => "INVALID_LINK",
            ErrorCode::InstallationRemoved => "INSTALLATION_REMOVED",
            ErrorCode::InvalidCard => "INVALID_CARD",
            ErrorCode::Blocked => "BLOCKED",
        }
    }
}

/// Everything that can go wrong inside the core.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// A malformed argument from the app.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The directory has no usable record for this account.
    #[error("unknown account: {0}")]
    UnknownAccount(String),
    /// No conversation with this id.
    #[error("unknown conversation: {0}")]
    UnknownConversation(String),
    /// Content over a size limit.
    #[error("payload too large: {size} bytes, limit {limit}")]
    PayloadTooLarge {
        /// Size of the encoded item.
        size: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// Bytes that do not decode.
    #[error("malformed {what}: {why}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        why: String,
    },
    /// A signature or a binding that does not verify.
    #[error("verification failed: {0}")]
    Verify(&'static str),
    /// MLS refused an operation or an inbound message.
    #[error("mls: {0}")]
    Mls(String),
    /// A message that cannot be decrypted.
    #[error("decrypt failed: {0}")]
    Decrypt(String),
    /// A message that came after every receive window had passed it (too old a
    /// generation or epoch): it cannot be decrypted any more, and is reported.
    #[error("message beyond the receive window: {0}")]
    TooLate(String),
    /// Stored state that does not authenticate or decode; never silently reset.
    #[error("store corrupt: {0}")]
    StoreCorrupt(String),
    /// Not (or no longer) a member of this conversation.
    #[error("not a member of {0}")]
    NotAMember(String),
    /// The group's permissions do not allow this member the change.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// Too many requests at once.
    #[error("rate limited: {0}")]
    RateLimited(&'static str),
    /// A Welcome to a group this installation already holds (a replay of its inbox).
    #[error("already a member of this group")]
    AlreadyJoined,
    /// A Welcome or tree ticket for a key package this installation does not hold.
    #[error("not addressed to this installation's key packages")]
    NotForUs,
    /// A link code or frame that is not good.
    #[error("invalid link: {0}")]
    InvalidLink(&'static str),
    /// This installation was removed from its account.
    #[error("this installation was removed from its account")]
    InstallationRemoved,
    /// A contact card that is not good.
    #[error("invalid contact card: {0}")]
    InvalidCard(&'static str),
    /// The account is blocked.
    #[error("the account is blocked")]
    Blocked,
}

impl CoreError {
    /// The public code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            CoreError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            CoreError::UnknownAccount(_) => ErrorCode::UnknownAccount,
            CoreError::UnknownConversation(_) => ErrorCode::UnknownConversation,
            CoreError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            CoreError::Decrypt(_) | CoreError::TooLate(_) => ErrorCode::DecryptFailed,
            CoreError::StoreCorrupt(_) => ErrorCode::StoreCorrupt,
            CoreError::NotAMember(_) => ErrorCode::NotAMember,
            CoreError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            CoreError::RateLimited(_) => ErrorCode::RateLimited,
            CoreError::InvalidLink(_) => ErrorCode::InvalidLink,
            CoreError::InstallationRemoved => ErrorCode::InstallationRemoved,
            CoreError::InvalidCard(_) => ErrorCode::InvalidCard,
            CoreError::Blocked => ErrorCode::Blocked,
            CoreError::Decode { .. }
            | CoreError::Verify(_)
            | CoreError::Mls(_)
            | CoreError::AlreadyJoined
            | CoreError::NotForUs => ErrorCode::Protocol,
        }
    }

    pub(crate) fn decode(what: &'static str, why: impl std::fmt::Display) -> Self {
        CoreError::Decode { what, why: why.to_string() }
    }

    pub(crate) fn mls(e: impl std::fmt::Debug) -> Self {
        CoreError::Mls(format!("{e:?}"))
    }
}

/// Result with [`CoreError`].
pub type Result<T> = std::result::Result<T, CoreError>;
