-- Version 3: the changes to version 1's tables, as ALTER TABLE (0001 is history: sites
-- run it as released). Written by hand; tests/store/test_upgrade_path.py keeps the result
-- equal to what cofid/store/tables.py creates. Each MODIFY restates the whole column as
-- tables.py defines it, so running a statement twice (a start killed halfway) is harmless.
--   batchExecutionLog.id AUTO_INCREMENT (other writers insert without an id);
--   server defaults (UTC_TIMESTAMP(3)) instead of the session-local CURRENT_TIMESTAMP(3);
--   batchExecutionLog.status admits 'partial'.
-- Rows already stored keep their values (MySQL's DECIMAL money columns are unchanged; on
-- SQLite cofid/store/sqlite_upgrade.py rebuilds the tables whose definition changed).
ALTER TABLE `batchExecutionLog`
	MODIFY id INTEGER NOT NULL AUTO_INCREMENT,
	MODIFY timestamp DATETIME(3) NOT NULL DEFAULT (UTC_TIMESTAMP(3)),
	MODIFY status ENUM('pending','processing','success','failed','partial');

ALTER TABLE `batchStatus`
	MODIFY `createdAt` DATETIME(3) NOT NULL DEFAULT (UTC_TIMESTAMP(3));

ALTER TABLE processing_logs
	MODIFY created_at DATETIME(3) NOT NULL DEFAULT (UTC_TIMESTAMP(3));

ALTER TABLE `schemaVersion`
	MODIFY `appliedAt` DATETIME(3) NOT NULL DEFAULT (UTC_TIMESTAMP(3));

ALTER TABLE task
	MODIFY `createdAt` DATETIME(3) NOT NULL DEFAULT (UTC_TIMESTAMP(3)),
	MODIFY `updatedAt` DATETIME(3) NOT NULL DEFAULT (UTC_TIMESTAMP(3));

ALTER TABLE `call`
	MODIFY `createdAt` DATETIME(3) NOT NULL DEFAULT (UTC_TIMESTAMP(3)),
	MODIFY `updatedAt` DATETIME(3) NOT NULL DEFAULT (UTC_TIMESTAMP(3));

ALTER TABLE `fileDistribution`
	MODIFY `updatedAt` DATETIME(3) NOT NULL DEFAULT (UTC_TIMESTAMP(3));

ALTER TABLE `auditAnswer`
	MODIFY `createdAt` DATETIME(3) NOT NULL DEFAULT (UTC_TIMESTAMP(3));

ALTER TABLE `callConversation`
	MODIFY `createdAt` DATETIME(3) NOT NULL DEFAULT (UTC_TIMESTAMP(3));

ALTER TABLE `lidStatus`
	MODIFY `createdAt` DATETIME(3) NOT NULL DEFAULT (UTC_TIMESTAMP(3));
