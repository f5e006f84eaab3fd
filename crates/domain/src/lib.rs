//! SecureCRUD domain: the vocabulary every other crate speaks.
//!
//! Job: validated newtypes (`Username`, `Email`, `Password`, `Role`, `UserId`, `SessionId`, `TaskId`,
//! `TaskTitle`, `TaskDescription`), the domain structs built from them (`User`, `NewUser`, `Task`, `NewTask`),
//! list queries (`TaskFilter`, `UserFilter`, `Paging`, `Page`) and the validation error type that lists every invalid field.
//!
//! Rules:
//! - Pure: no actix, sea-orm, tokio or I/O. Anything here can be used from any layer and from tests.
//! - Parse, don't validate: a newtype's field is private and its only constructor is `parse`, so holding a
//!   `Username` means holding a valid one. Conversion from wire strings happens once, at the HTTP edge.
//! - Secrets never print: `Password` has a redacting `Debug` and no `Display`.

mod audit;
mod error;
mod ids;
mod mail;
mod password;
mod session;
mod task;
mod user;

pub use audit::{AuditEvent, AuditFilter, AuditKind, AuditPage};
pub use error::{FieldError, Invalid, ValidationErrors};
pub use ids::{SessionId, UserId};
pub use mail::{Mail, SealedMail};
pub use password::{LoginPassword, PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS, Password};
pub use session::Session;
pub use task::{
    ImportedTask, NewTask, Page, Paging, SearchText, Task, TaskDescription, TaskFilter, TaskId,
    TaskPatch, TaskSort, TaskTitle, parse_bool, search_key,
};
pub use user::{AccountChange, ConflictField, Email, NewUser, Role, User, UserFilter, Username};
