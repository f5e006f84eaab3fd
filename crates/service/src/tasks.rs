//! Task use cases. A user reaches only their own tasks: every call names the owner, and another user's task
//! is reported exactly like a missing one ([`ServiceError::NotFound`]).

use securecrud_domain::{NewTask, Page, Task, TaskFilter, TaskId, TaskPatch};

use crate::{CurrentSession, ServiceError, Services};

impl Services {
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn create_task(
        &self,
        current: &CurrentSession,
        new: NewTask,
    ) -> Result<Task, ServiceError> {
        Ok(self.db.insert_task(current.user.id, new).await?)
    }

    /// # Errors
    /// [`ServiceError::NotFound`] when the current user has no such task.
    pub async fn get_task(
        &self,
        current: &CurrentSession,
        id: TaskId,
    ) -> Result<Task, ServiceError> {
        self.db
            .find_task(current.user.id, id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// The current user's tasks; `filter.owner` is always the current user.
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn list_tasks(
        &self,
        current: &CurrentSession,
        filter: TaskFilter,
    ) -> Result<Page<Task>, ServiceError> {
        let filter = TaskFilter {
            owner: Some(current.user.id),
            ..filter
        };
        Ok(self.db.list_tasks(&filter).await?)
    }

    /// Every user's tasks, optionally of one owner (admins).
    ///
    /// # Errors
    /// [`ServiceError::Unavailable`] or [`ServiceError::Unexpected`] when the database fails.
    pub async fn list_all_tasks(&self, filter: TaskFilter) -> Result<Page<Task>, ServiceError> {
        Ok(self.db.list_tasks(&filter).await?)
    }

    /// Applies a partial update (also used for PUT and for `/complete`).
    ///
    /// # Errors
    /// [`ServiceError::NotFound`] when the current user has no such task.
    pub async fn update_task(
        &self,
        current: &CurrentSession,
        id: TaskId,
        patch: TaskPatch,
    ) -> Result<Task, ServiceError> {
        self.db
            .update_task(current.user.id, id, patch)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// # Errors
    /// [`ServiceError::NotFound`] when the current user has no such task.
    pub async fn delete_task(
        &self,
        current: &CurrentSession,
        id: TaskId,
    ) -> Result<(), ServiceError> {
        if self.db.delete_task(current.user.id, id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }
}
