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
