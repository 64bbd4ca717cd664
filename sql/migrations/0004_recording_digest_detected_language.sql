-- Version 4: two additive facts. Written by hand but for the CREATE TABLE, which is
-- `cofid db ddl --version 4`; tests/store/test_upgrade_path.py keeps the result equal to
-- what cofid/store/tables.py creates. Safe to run again (a start killed halfway): the
-- upgrade skips a CREATE TABLE whose table exists and an ADD COLUMN whose column exists.
--   recordingDigest: the SHA-256 and size of each recording as cofid first took it in,
--     one row per batch+file, written once and never updated;
--   lidStatus.detectedLanguage: the detector's own language code ("fr" where language
--     says 'other'); rows written before it stay NULL.
CREATE TABLE `recordingDigest` (
	`batchId` INTEGER NOT NULL, 
	`audioName` VARCHAR(255) NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	`sizeBytes` BIGINT NOT NULL, 
	`storedAt` DATETIME(3) NOT NULL DEFAULT (UTC_TIMESTAMP(3)), 
	PRIMARY KEY (`batchId`, `audioName`), 
	FOREIGN KEY(`batchId`) REFERENCES `batchStatus` (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

ALTER TABLE `lidStatus` ADD COLUMN `detectedLanguage` VARCHAR(16);
