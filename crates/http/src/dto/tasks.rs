//! Task wire types.

use paperclip::actix::Apiv2Schema;
use securecrud_domain::{
    NewTask, Page, SearchText, Task, TaskDescription, TaskFilter, TaskPatch, TaskTitle, UserId,
    ValidationErrors, parse_bool,
};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use super::Timestamp;

/// A task.
#[derive(Debug, Serialize, Apiv2Schema)]
pub struct TaskResponse {
    pub id: i64,
    pub owner_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub completed: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<Task> for TaskResponse {
    fn from(task: Task) -> Self {
        Self {
            id: task.id.get(),
            owner_id: task.owner_id.as_uuid(),
            title: task.title.as_str().to_owned(),
            description: task.description.map(|d| d.as_str().to_owned()),
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
#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskRequest {
    /// 1–200 characters after trimming.
    pub title: Option<String>,
    /// At most 1000 characters, or null.
    pub description: Option<String>,
    /// Default false.
    pub completed: Option<bool>,
}

impl TryFrom<CreateTaskRequest> for NewTask {
    type Error = ValidationErrors;

    fn try_from(body: CreateTaskRequest) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let title = errors.required("title", body.title.as_deref(), TaskTitle::parse);
        let description = body
            .description
            .and_then(|raw| errors.check("description", TaskDescription::parse(&raw)));
        errors.finish(|| {
            Some(NewTask {
                title: title?,
                description,
                completed: body.completed.unwrap_or(false),
            })
        })
    }
}

/// Changes to a task; fields left out keep their value, `"description": null` clears the description.
#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTaskRequest {
    /// 1–200 characters after trimming.
    #[serde(default, deserialize_with = "present")]
    pub title: Option<Option<String>>,
    /// At most 1000 characters; null clears it.
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub completed: Option<Option<bool>>,
}

/// Tells a field given as `null` (`Some(None)`) from a missing one (`None`, by `#[serde(default)]`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

impl TryFrom<UpdateTaskRequest> for TaskPatch {
    type Error = ValidationErrors;

    fn try_from(body: UpdateTaskRequest) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let title = match body.title {
            None => None,
            Some(None) => {
                errors.push("title", "must not be null");
                None
            }
            Some(Some(raw)) => errors.check("title", TaskTitle::parse(&raw)),
        };
        let description = match body.description {
            None => None,
            Some(None) => Some(None),
            Some(Some(raw)) => errors
                .check("description", TaskDescription::parse(&raw))
                .map(Some),
        };
        let completed = match body.completed {
            Some(None) => {
                errors.push("completed", "must not be null");
                None
            }
            other => other.flatten(),
        };
        errors.finish(|| {
            Some(TaskPatch {
                title,
                description,
                completed,
            })
        })
    }
}

/// Marks a task done or not done.
#[derive(Debug, Deserialize, Apiv2Schema)]
#[serde(deny_unknown_fields)]
pub struct CompleteTaskRequest {
    pub completed: Option<bool>,
}

impl TryFrom<CompleteTaskRequest> for TaskPatch {
    type Error = ValidationErrors;

    fn try_from(body: CompleteTaskRequest) -> Result<Self, Self::Error> {
        match body.completed {
            Some(completed) => Ok(TaskPatch {
                completed: Some(completed),
                ..TaskPatch::default()
            }),
            None => Err(ValidationErrors::single("completed", "is required")),
        }
    }
}

/// Query parameters of `GET /api/v1/tasks`.
#[derive(Debug, Deserialize, Apiv2Schema)]
pub struct TaskListParams {
    /// `true` or `false`.
    pub completed: Option<String>,
    /// A case-insensitive substring of the title or description (`%`, `_`, `\` match themselves).
    pub q: Option<String>,
    /// `created_at`, `-created_at` (default), `updated_at`, `-updated_at`, `title` or `-title`.
    pub sort: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<String>,
    /// ≥ 0, default 0.
    pub offset: Option<String>,
}

/// Query parameters of `GET /api/v1/admin/tasks`: those of the task list, and an owner.
#[derive(Debug, Deserialize, Apiv2Schema)]
pub struct AdminTaskListParams {
    /// Only this user's tasks (a user id).
    pub owner_id: Option<String>,
    /// `true` or `false`.
    pub completed: Option<String>,
    /// A case-insensitive substring of the title or description (`%`, `_`, `\` match themselves).
    pub q: Option<String>,
    /// `created_at`, `-created_at` (default), `updated_at`, `-updated_at`, `title` or `-title`.
    pub sort: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<String>,
    /// ≥ 0, default 0.
    pub offset: Option<String>,
}

impl TryFrom<TaskListParams> for TaskFilter {
    type Error = ValidationErrors;

    fn try_from(params: TaskListParams) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let filter = task_filter(
            &mut errors,
            params.completed,
            params.q,
            params.sort,
            params.limit,
            params.offset,
        );
        errors.finish(|| Some(filter))
    }
}

impl TryFrom<AdminTaskListParams> for TaskFilter {
    type Error = ValidationErrors;

    fn try_from(params: AdminTaskListParams) -> Result<Self, Self::Error> {
        let mut errors = ValidationErrors::default();
        let owner = params.owner_id.and_then(|raw| {
            let parsed = raw
                .parse::<Uuid>()
                .map(UserId::from_uuid)
                .map_err(|_| securecrud_domain::Invalid::new("must be a user id (UUID)"));
            errors.check("owner_id", parsed)
        });
        let filter = task_filter(
            &mut errors,
            params.completed,
            params.q,
            params.sort,
            params.limit,
            params.offset,
        );
        errors.finish(|| Some(TaskFilter { owner, ..filter }))
    }
}

fn task_filter(
    errors: &mut ValidationErrors,
    completed: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
) -> TaskFilter {
    TaskFilter {
        owner: None,
        completed: completed.and_then(|raw| errors.check("completed", parse_bool(&raw))),
        q: q.and_then(|raw| errors.check("q", SearchText::parse(&raw))),
        sort: sort
            .and_then(|raw| errors.check("sort", raw.parse()))
            .unwrap_or_default(),
        paging: super::paging(errors, limit, offset),
    }
}
