//! Task wire types.

use paperclip::actix::Apiv2Schema;
use securecrud_domain::{
    NewTask, Page, SearchText, Task, TaskDescription, TaskFilter, TaskPatch, TaskSort, TaskTitle,
    ValidationErrors, parse_bool,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Timestamp;
use crate::schema::{
    Flag, Limit, Nullable, Offset, Optional, OrNull, RequestBody, Required, Text, UuidText,
};

/// A task.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct TaskResponse {
    pub id: i64,
    pub owner_id: Uuid,
    pub title: String,
    pub description: OrNull<String>,
    pub completed: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<Task> for TaskResponse {
    fn from(task: Task) -> Self {
        Self {
            id: task.id.get(),
            owner_id: task.owner_id.as_uuid(),
            title: task.title.into_string(),
            description: task.description.map(TaskDescription::into_string).into(),
            completed: task.completed,
            created_at: Timestamp(task.created_at),
            updated_at: Timestamp(task.updated_at),
        }
    }
}

/// One page of tasks.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct TaskPageResponse {
    pub items: Vec<TaskResponse>,
    /// How many tasks match in all.
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

impl From<Page<Task>> for TaskPageResponse {
    fn from(page: Page<Task>) -> Self {
        Self {
            items: page.items.into_iter().map(Into::into).collect(),
            total: page.total,
            limit: page.limit,
            offset: page.offset,
        }
    }
}

/// A new task.
#[derive(Debug, Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct CreateTaskRequest {
    /// 1–200 characters after trimming (stored trimmed).
    pub title: Required<Text<TaskTitle>>,
    /// At most 1000 characters, or null.
    pub description: Nullable<Text<TaskDescription>>,
    /// Default false.
    pub completed: Optional<bool>,
}

impl RequestBody for CreateTaskRequest {}

impl TryFrom<CreateTaskRequest> for NewTask {
    type Error = ValidationErrors;

    fn try_from(body: CreateTaskRequest) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let title = errors.required("title", body.title.as_deref(), TaskTitle::parse);
        let description = description(&mut errors, body.description).flatten();
        errors.finish(|| {
            Some(NewTask {
                title: title?,
                description,
                completed: body.completed.into_option().unwrap_or(false),
            })
        })
    }
}

/// Changes to a task; fields left out keep their value, `"description": null` clears the description.
#[derive(Debug, Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateTaskRequest {
    /// 1–200 characters after trimming (stored trimmed).
    pub title: Optional<Text<TaskTitle>>,
    /// At most 1000 characters; null clears it.
    pub description: Nullable<Text<TaskDescription>>,
    pub completed: Optional<bool>,
}

impl RequestBody for UpdateTaskRequest {}

/// A description field: `None` when left out, `Some(None)` for null (cleared), `Some(Some(_))` when valid.
fn description(
    errors: &mut ValidationErrors,
    field: Nullable<Text<TaskDescription>>,
) -> Option<Option<TaskDescription>> {
    match field {
        Nullable::Absent => None,
        Nullable::Null => Some(None),
        Nullable::Value(raw) => errors
            .check("description", TaskDescription::parse(raw.as_str()))
            .map(Some),
    }
}

impl TryFrom<UpdateTaskRequest> for TaskPatch {
    type Error = ValidationErrors;

    fn try_from(body: UpdateTaskRequest) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let title = body
            .title
            .as_deref()
            .and_then(|raw| errors.check("title", TaskTitle::parse(raw)));
        let description = description(&mut errors, body.description);
        errors.finish(|| {
            Some(TaskPatch {
                title,
                description,
                completed: body.completed.into_option(),
            })
        })
    }
}

/// Marks a task done or not done.
#[derive(Debug, Default, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields, default)]
pub struct CompleteTaskRequest {
    pub completed: Required<bool>,
}

impl RequestBody for CompleteTaskRequest {}

impl TryFrom<CompleteTaskRequest> for TaskPatch {
    type Error = ValidationErrors;

    fn try_from(body: CompleteTaskRequest) -> Result<Self, Self::Error> {
        match body.completed.into_option() {
            Some(completed) => Ok(TaskPatch {
                completed: Some(completed),
                ..TaskPatch::default()
            }),
            None => Err(ValidationErrors::single("completed", "is required")),
        }
    }
}

/// Query parameters of `GET /api/v1/tasks`.
#[derive(Debug, Default, Deserialize, Apiv2Schema)]
#[serde(default)]
pub struct TaskListParams {
    /// Only done (`true`) or not done (`false`) tasks.
    pub completed: Optional<Text<Flag>>,
    /// A case-insensitive substring of the title or description (`%`, `_`, `\` match themselves).
    pub q: Optional<Text<SearchText>>,
    /// The order; `-` for descending. Default `-created_at`.
    pub sort: Optional<Text<TaskSort>>,
    /// 1–100, default 20.
    pub limit: Optional<Text<Limit>>,
    /// ≥ 0, default 0.
    pub offset: Optional<Text<Offset>>,
}

/// Query parameters of `GET /api/v1/admin/tasks`: those of the task list, and an owner.
#[derive(Debug, Default, Deserialize, Apiv2Schema)]
#[serde(default)]
pub struct AdminTaskListParams {
    /// Only this user's tasks (a user id).
    pub owner_id: Optional<Text<UuidText>>,
    /// Only done (`true`) or not done (`false`) tasks.
    pub completed: Optional<Text<Flag>>,
    /// A case-insensitive substring of the title or description (`%`, `_`, `\` match themselves).
    pub q: Optional<Text<SearchText>>,
    /// The order; `-` for descending. Default `-created_at`.
    pub sort: Optional<Text<TaskSort>>,
    /// 1–100, default 20.
    pub limit: Optional<Text<Limit>>,
    /// ≥ 0, default 0.
    pub offset: Optional<Text<Offset>>,
}

impl TryFrom<TaskListParams> for TaskFilter {
    type Error = ValidationErrors;

    fn try_from(params: TaskListParams) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let filter = task_filter(
            &mut errors,
            &params.completed,
            &params.q,
            &params.sort,
            &params.limit,
            &params.offset,
        );
        errors.finish(|| Some(filter))
    }
}

impl TryFrom<AdminTaskListParams> for TaskFilter {
    type Error = ValidationErrors;

    fn try_from(params: AdminTaskListParams) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let owner = params
            .owner_id
            .as_deref()
            .and_then(|raw| errors.check("owner_id", super::parse_user_id(raw)));
        let filter = task_filter(
            &mut errors,
            &params.completed,
            &params.q,
            &params.sort,
            &params.limit,
            &params.offset,
        );
        errors.finish(|| Some(TaskFilter { owner, ..filter }))
    }
}

fn task_filter(
    errors: &mut ValidationErrors,
    completed: &Optional<Text<Flag>>,
    q: &Optional<Text<SearchText>>,
    sort: &Optional<Text<TaskSort>>,
    limit: &Optional<Text<Limit>>,
    offset: &Optional<Text<Offset>>,
) -> TaskFilter {
    TaskFilter {
        owner: None,
        completed: completed
            .as_deref()
            .and_then(|raw| errors.check("completed", parse_bool(raw))),
        q: q.as_deref()
            .and_then(|raw| errors.check("q", SearchText::parse(raw))),
        sort: sort
            .as_deref()
            .and_then(|raw| errors.check("sort", raw.parse()))
            .unwrap_or_default(),
        paging: super::paging(errors, limit, offset),
    }
}
