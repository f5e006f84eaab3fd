//! The tasks repository. Every method that reads or changes one task takes its owner too, so a task of
//! another user is indistinguishable from a missing one.

use anyhow::Context;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, DbErr, EntityTrait, ExprTrait, FromQueryResult, PaginatorTrait,
    QueryFilter, QueryOrder, QueryResult, QuerySelect, QueryTrait, Select,
    prelude::Uuid,
    sea_query::{Expr, LikeExpr, Order},
};
use securecrud_domain::{
    NewTask, Page, SearchText, Task, TaskDescription, TaskFilter, TaskId, TaskPatch, TaskSort,
    TaskTitle, UserId, search_key,
};
use time::OffsetDateTime;

use crate::{Conn, Database, RepoError, connect::Effect, entity::tasks};

impl<C: Conn> Database<C> {
    /// Creates a task for `owner`.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the insert fails.
    pub async fn insert_task(&self, owner: UserId, new: NewTask) -> Result<Task, RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        let at = self.now();
        let model = new_task_model(owner, new, at, at).insert(&write).await?;
        to_task(model)
    }

    /// One task of `owner`.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the query fails.
    pub async fn find_task(&self, owner: UserId, id: TaskId) -> Result<Option<Task>, RepoError> {
        tasks::Entity::find_by_id(id.get())
            .filter(tasks::Column::OwnerId.eq(owner.as_uuid()))
            .one(&self.read())
            .await?
            .map(to_task)
            .transpose()
    }

    /// Applies `patch` to a task of `owner` in one statement and returns the task as it is now; `updated_at`
    /// moves even when no field changes. `None` if `owner` has no such task.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the update fails.
    pub async fn update_task(
        &self,
        owner: UserId,
        id: TaskId,
        patch: TaskPatch,
    ) -> Result<Option<Task>, RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        let mut update = tasks::Entity::update_many()
            .col_expr(tasks::Column::UpdatedAt, Expr::value(self.now()))
            .filter(tasks::Column::Id.eq(id.get()))
            .filter(tasks::Column::OwnerId.eq(owner.as_uuid()));
        if let Some(title) = patch.title {
            update = update
                .col_expr(
                    tasks::Column::TitleSearch,
                    Expr::value(search_key(title.as_str())),
                )
                .col_expr(tasks::Column::Title, Expr::value(title.as_str().to_owned()));
        }
        if let Some(description) = patch.description {
            let search = description.as_ref().map(|d| search_key(d.as_str()));
            let text = description.map(|d| d.as_str().to_owned());
            update = update
                .col_expr(tasks::Column::Description, Expr::value(text))
                .col_expr(tasks::Column::DescriptionSearch, Expr::value(search));
        }
        if let Some(completed) = patch.completed {
            update = update.col_expr(tasks::Column::Completed, Expr::value(completed));
        }
        let mut updated = update.exec_with_returning(&write).await?;
        updated.pop().map(to_task).transpose()
    }

    /// Deletes a task of `owner`. Returns whether there was one.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when the delete fails.
    pub async fn delete_task(&self, owner: UserId, id: TaskId) -> Result<bool, RepoError> {
        let write = self.write(Effect::Elsewhere).await?;
        let result = tasks::Entity::delete_many()
            .filter(tasks::Column::Id.eq(id.get()))
            .filter(tasks::Column::OwnerId.eq(owner.as_uuid()))
            .exec(&write)
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// One page of the tasks matching `filter`, and how many match in all.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unexpected`] when a query fails.
    pub async fn list_tasks(&self, filter: &TaskFilter) -> Result<Page<Task>, RepoError> {
        let mut condition = Condition::all();
        if let Some(owner) = filter.owner {
            condition = condition.add(tasks::Column::OwnerId.eq(owner.as_uuid()));
        }
        if let Some(completed) = filter.completed {
            condition = condition.add(tasks::Column::Completed.eq(completed));
        }
        if let Some(q) = &filter.q {
            let pattern = contains_pattern(q);
            condition = condition.add(
                Condition::any()
                    .add(Expr::col(tasks::Column::TitleSearch).like(pattern.clone()))
                    .add(Expr::col(tasks::Column::DescriptionSearch).like(pattern)),
            );
        }
        // The total rides along with the page as an uncorrelated scalar subquery: one statement, evaluated
        // once, and the page itself still stops after `limit` rows through the owner index (a window
        // `COUNT(*) OVER ()` would have to read every matching row).
        let count = tasks::Entity::find()
            .select_only()
            .expr(Expr::col(tasks::Column::Id).count())
            .filter(condition.clone())
            .into_query();
        let query = tasks::Entity::find().filter(condition);
        let rows = sorted(query.clone(), filter.sort)
            .select_only()
            .columns(Listed::COLUMNS)
            .expr(Expr::from(count))
            .limit(filter.paging.limit())
            .offset(filter.paging.offset())
            .into_model::<Listed>()
            .all(&self.read())
            .await?;
        let total = match rows.first() {
            Some(row) => u64::try_from(row.total).context("a negative task count")?,
            // An empty page past the end still reports how many there are.
            None if filter.paging.offset() > 0 => query.count(&self.read()).await?,
            None => 0,
        };
        let items = rows
            .into_iter()
            .map(|row| row.task.into_task())
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            total,
            limit: filter.paging.limit(),
            offset: filter.paging.offset(),
        })
    }
}

/// A row of a page: the columns a task's answer needs, then the total count of the page's query, read by
/// position (a page reads 20 rows of 8 columns: looking each value up by name was a tenth of the list's CPU).
/// The search keys stay in the database, where `q` and the title order use them.
struct Listed {
    task: TaskColumns,
    total: i64,
}

impl Listed {
    /// The selected columns, in the order [`FromQueryResult`] below reads them; the total follows.
    const COLUMNS: [tasks::Column; 7] = [
        tasks::Column::Id,
        tasks::Column::OwnerId,
        tasks::Column::Title,
        tasks::Column::Description,
        tasks::Column::Completed,
        tasks::Column::CreatedAt,
        tasks::Column::UpdatedAt,
    ];
}

impl FromQueryResult for Listed {
    fn from_query_result(row: &QueryResult, _prefix: &str) -> Result<Self, DbErr> {
        Ok(Self {
            task: TaskColumns {
                id: row.try_get_by_index(0)?,
                owner_id: row.try_get_by_index(1)?,
                title: row.try_get_by_index(2)?,
                description: row.try_get_by_index(3)?,
                completed: row.try_get_by_index(4)?,
                created_at: row.try_get_by_index(5)?,
                updated_at: row.try_get_by_index(6)?,
            },
            total: row.try_get_by_index(Self::COLUMNS.len())?,
        })
    }
}

/// What a task's answer is made of, as stored.
struct TaskColumns {
    id: i64,
    owner_id: Uuid,
    title: String,
    description: Option<String>,
    completed: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TaskColumns {
    /// The task, its title and description checked again as they leave the database (moved, not copied).
    fn into_task(self) -> Result<Task, RepoError> {
        let id = self.id;
        let context = || format!("task {id} holds invalid data");
        Ok(Task {
            id: TaskId::new(id),
            owner_id: UserId::from_uuid(self.owner_id),
            title: TaskTitle::parse_owned(self.title)
                .map_err(|e| anyhow::anyhow!(e.0))
                .with_context(context)?,
            description: self
                .description
                .map(TaskDescription::parse_owned)
                .transpose()
                .map_err(|e| anyhow::anyhow!(e.0))
                .with_context(context)?,
            completed: self.completed,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

impl From<tasks::Model> for TaskColumns {
    fn from(model: tasks::Model) -> Self {
        Self {
            id: model.id,
            owner_id: model.owner_id,
            title: model.title,
            description: model.description,
            completed: model.completed,
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

/// `%q%` over the search columns, with `\`, `%` and `_` in `q` escaped so they match themselves.
pub(crate) fn contains_pattern(q: &SearchText) -> LikeExpr {
    let mut escaped = String::with_capacity(q.as_str().len() + 2);
    escaped.push('%');
    for c in search_key(q.as_str()).chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    LikeExpr::new(escaped).escape('\\')
}

/// Orders by the requested field, then by id, so that pages never overlap or skip.
fn sorted(query: Select<tasks::Entity>, sort: TaskSort) -> Select<tasks::Entity> {
    let (column, order) = match sort {
        TaskSort::CreatedAt => (tasks::Column::CreatedAt, Order::Asc),
        TaskSort::CreatedAtDesc => (tasks::Column::CreatedAt, Order::Desc),
        TaskSort::UpdatedAt => (tasks::Column::UpdatedAt, Order::Asc),
        TaskSort::UpdatedAtDesc => (tasks::Column::UpdatedAt, Order::Desc),
        TaskSort::Title => (tasks::Column::TitleSearch, Order::Asc),
        TaskSort::TitleDesc => (tasks::Column::TitleSearch, Order::Desc),
    };
    let query = query.order_by(column, order.clone());
    let query = if matches!(sort, TaskSort::Title | TaskSort::TitleDesc) {
        query.order_by(tasks::Column::Title, order.clone())
    } else {
        query
    };
    query.order_by(tasks::Column::Id, order)
}

fn to_task(model: tasks::Model) -> Result<Task, RepoError> {
    TaskColumns::from(model).into_task()
}

/// The row of a new task with its search keys (the lower-cased title and description that `q` matches).
pub(crate) fn new_task_model(
    owner: UserId,
    task: NewTask,
    created_at: time::OffsetDateTime,
    updated_at: time::OffsetDateTime,
) -> tasks::ActiveModel {
    tasks::ActiveModel {
        owner_id: Set(owner.as_uuid()),
        title_search: Set(search_key(task.title.as_str())),
        title: Set(task.title.as_str().to_owned()),
        description_search: Set(task.description.as_ref().map(|d| search_key(d.as_str()))),
        description: Set(task.description.map(|d| d.as_str().to_owned())),
        completed: Set(task.completed),
        created_at: Set(created_at),
        updated_at: Set(updated_at),
        ..Default::default()
    }
}
