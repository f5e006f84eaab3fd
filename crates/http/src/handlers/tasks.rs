//! `/api/v1/tasks*`: the current user's tasks. Another user's task id answers 404, as a missing one does.

use paperclip::actix::{NoContent, api_v2_operation, web};
use securecrud_domain::{NewTask, TaskFilter, TaskId, TaskPatch};
use securecrud_service::Services;

use crate::{
    dto::{
        CompleteTaskRequest, CreateTaskRequest, TaskListParams, TaskPageResponse, TaskResponse,
        UpdateTaskRequest,
    },
    error::{Problem, error_set},
    extract::{ApiJson, SignedIn, StrictQuery},
    handlers::resource,
    respond::Created,
};

/// `/api/v1/tasks*`.
pub fn routes(cfg: &mut web::ServiceConfig<'_>) {
    resource!(cfg, "/tasks", [GET => list, POST => create]);
    resource!(cfg, "/tasks/{id}", [GET => get, PUT => put, PATCH => update, DELETE => delete]);
    resource!(cfg, "/tasks/{id}/complete", [PATCH => complete]);
}

error_set!(
    /// What a task route can answer besides success.
    TaskError {
        400 => "The body or query string could not be parsed",
        401 => "No, an invalid, an expired or a revoked access token",
        404 => "No such task of the current user (another user's task included)",
        413 => "The body is larger than 64 KiB",
        415 => "The body is not `application/json`",
        422 => "A field or parameter breaks its rule (all listed in `errors`)",
        429 => "`rate_limited`: too many requests from this IP; see `Retry-After`",
        500 => "Unexpected server error",
        503 => "The database is unavailable",
    }
);

/// List my tasks
///
/// Filter by `completed` and `q`, order by `sort`, page with `limit` and `offset`; `total` counts every match.
#[api_v2_operation(tags(Tasks), operation_id = "listTasks")]
pub async fn list(
    services: web::Data<Services>,
    auth: SignedIn,
    query: StrictQuery<TaskListParams>,
) -> Result<web::Json<TaskPageResponse>, TaskError> {
    let filter = TaskFilter::try_from(query.0)?;
    let page = services.list_tasks(&auth.0, filter).await?;
    Ok(web::Json(page.into()))
}

/// Create a task
#[api_v2_operation(tags(Tasks), operation_id = "createTask")]
pub async fn create(
    services: web::Data<Services>,
    auth: SignedIn,
    body: ApiJson<CreateTaskRequest>,
) -> Result<Created<TaskResponse>, TaskError> {
    let new = NewTask::try_from(body.0)?;
    let task = services.create_task(&auth.0, new).await?;
    Ok(Created::at(
        format!("/api/v1/tasks/{}", task.id),
        task.into(),
    ))
}

/// Get a task
#[api_v2_operation(tags(Tasks), operation_id = "getTask")]
pub async fn get(
    services: web::Data<Services>,
    auth: SignedIn,
    id: web::Path<i64>,
) -> Result<web::Json<TaskResponse>, TaskError> {
    let task = services
        .get_task(&auth.0, TaskId::new(id.into_inner()))
        .await?;
    Ok(web::Json(task.into()))
}

/// Update a task
///
/// Fields left out keep their value; `"description": null` clears the description. PUT and PATCH behave
/// the same. `updated_at` moves on every update.
#[api_v2_operation(tags(Tasks), operation_id = "updateTask")]
pub async fn update(
    services: web::Data<Services>,
    auth: SignedIn,
    id: web::Path<i64>,
    body: ApiJson<UpdateTaskRequest>,
) -> Result<web::Json<TaskResponse>, TaskError> {
    apply(&services, &auth, id, TaskPatch::try_from(body.0)?).await
}

/// Replace a task's fields
///
/// As PATCH: fields left out keep their value; `"description": null` clears the description.
#[api_v2_operation(tags(Tasks), operation_id = "putTask")]
pub async fn put(
    services: web::Data<Services>,
    auth: SignedIn,
    id: web::Path<i64>,
    body: ApiJson<UpdateTaskRequest>,
) -> Result<web::Json<TaskResponse>, TaskError> {
    apply(&services, &auth, id, TaskPatch::try_from(body.0)?).await
}

/// Mark a task done or not done
#[api_v2_operation(tags(Tasks), operation_id = "completeTask")]
pub async fn complete(
    services: web::Data<Services>,
    auth: SignedIn,
    id: web::Path<i64>,
    body: ApiJson<CompleteTaskRequest>,
) -> Result<web::Json<TaskResponse>, TaskError> {
    apply(&services, &auth, id, TaskPatch::try_from(body.0)?).await
}

/// Delete a task
#[api_v2_operation(tags(Tasks), operation_id = "deleteTask")]
pub async fn delete(
    services: web::Data<Services>,
    auth: SignedIn,
    id: web::Path<i64>,
) -> Result<NoContent, TaskError> {
    services
        .delete_task(&auth.0, TaskId::new(id.into_inner()))
        .await?;
    Ok(NoContent)
}

/// The shared step of PUT, PATCH and `/complete`: one partial update.
async fn apply(
    services: &Services,
    auth: &SignedIn,
    id: web::Path<i64>,
    patch: TaskPatch,
) -> Result<web::Json<TaskResponse>, TaskError> {
    let task = services
        .update_task(&auth.0, TaskId::new(id.into_inner()), patch)
        .await?;
    Ok(web::Json(task.into()))
}
