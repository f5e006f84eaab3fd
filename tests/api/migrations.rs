use securecrud_tests::{PASSWORD, TestApp};

#[actix_web::test]
async fn every_migration_reverts_and_reapplies() {
    let app = TestApp::spawn().await;
    let db = app.services.database();
    let applied = db.migration_status().await.unwrap();
    assert!(applied.iter().all(|m| m.applied), "{applied:?}");

    db.migrate_down(u32::try_from(applied.len()).unwrap())
        .await
        .unwrap();
    assert!(
        db.migration_status()
            .await
            .unwrap()
            .iter()
            .all(|m| !m.applied)
    );

    db.migrate_up().await.unwrap();
    assert!(
        db.migration_status()
            .await
            .unwrap()
            .iter()
            .all(|m| m.applied)
    );
    assert_eq!(
        app.register("ada_l", "ada@example.com", PASSWORD)
            .await
            .status(),
        201
    );
}

#[actix_web::test]
async fn sqlite_is_built_with_the_planner_stability_guarantee_and_without_memory_statistics() {
    if securecrud_tests::Backend::current() != securecrud_tests::Backend::Sqlite {
        return;
    }
    let app = TestApp::spawn().await;

    let options = app
        .query_strings(
            "SELECT compile_options FROM pragma_compile_options \
             WHERE compile_options IN ('ENABLE_QPSG', 'DEFAULT_MEMSTATUS=0') ORDER BY 1",
        )
        .await;

    assert_eq!(
        options,
        ["DEFAULT_MEMSTATUS=0", "ENABLE_QPSG"],
        "without them every bound LIMIT re-prepares its statement and every allocation takes a global \
         mutex (.cargo/config.toml)"
    );
}

#[actix_web::test]
async fn instances_starting_at_once_on_one_database_all_migrate() {
    // Several instances deployed together each run the migrations at start-up, on a fresh database.
    let database = securecrud_tests::FreshDatabase::create().await;
    let url = securecrud_persistence::DatabaseUrl::parse(&database.url).unwrap();
    let options = securecrud_persistence::ConnectOptions::default();
    let mut instances = Vec::new();
    for _ in 0..4 {
        instances.push(
            securecrud_persistence::Database::connect(&url, &options)
                .await
                .unwrap(),
        );
    }

    let results = futures_util::future::join_all(instances.iter().map(|db| db.migrate_up())).await;

    for result in results {
        result.unwrap();
    }
    let status = instances[0].migration_status().await.unwrap();
    assert!(status.iter().all(|m| m.applied), "{status:?}");
    for db in &instances {
        db.close().await.unwrap();
    }
}
