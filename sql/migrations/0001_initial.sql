-- Generated from cofid/store/tables.py by `cofid db ddl`; do not edit by hand.
CREATE TABLE `auditQuestion` (
	id INTEGER NOT NULL AUTO_INCREMENT, 
	`processId` INTEGER NOT NULL, 
	`categoryMappingId` INTEGER NOT NULL, 
	`questionOrder` INTEGER NOT NULL, 
	`questionId` VARCHAR(64) NOT NULL, 
	question TEXT NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_aq_set_question UNIQUE (`processId`, `categoryMappingId`, `questionId`)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE `batchExecutionLog` (
	id INTEGER NOT NULL, 
	`batchId` INTEGER NOT NULL, 
	timestamp DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), 
	stage VARCHAR(50) NOT NULL, 
	`eventType` ENUM('stage_start','stage_progress','stage_complete','file_start','file_complete','error','info'), 
	`fileName` VARCHAR(255), 
	`gpuIp` VARCHAR(50), 
	payload TEXT, 
	response TEXT, 
	status ENUM('pending','processing','success','failed'), 
	`errorMessage` TEXT, 
	`totalFiles` INTEGER, 
	`processedFiles` INTEGER, 
	metadata JSON, 
	PRIMARY KEY (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE INDEX ix_bel_batch_stage ON `batchExecutionLog` (`batchId`, stage, `eventType`, status);

CREATE INDEX ix_bel_timestamp ON `batchExecutionLog` (timestamp);

CREATE TABLE `batchStatus` (
	id INTEGER NOT NULL AUTO_INCREMENT, 
	`batchDate` DATE NOT NULL, 
	`batchNumber` INTEGER NOT NULL, 
	status VARCHAR(32) NOT NULL DEFAULT 'Pending', 
	`dbInsertionStatus` VARCHAR(16) NOT NULL DEFAULT 'Pending', 
	`callmetadataStatus` TINYINT NOT NULL DEFAULT '0', 
	`trademetadataStatus` TINYINT NOT NULL DEFAULT '0', 
	`denoiseStatus` VARCHAR(16) NOT NULL DEFAULT 'Pending', 
	`ivrStatus` VARCHAR(16) NOT NULL DEFAULT 'Pending', 
	`lidStatus` VARCHAR(16) NOT NULL DEFAULT 'Pending', 
	`triagingStatus` VARCHAR(16) NOT NULL DEFAULT 'Pending', 
	`sttStatus` VARCHAR(16) NOT NULL DEFAULT 'Pending', 
	`llm1Status` VARCHAR(16) NOT NULL DEFAULT 'Pending', 
	`llm2Status` VARCHAR(16) NOT NULL DEFAULT 'Pending', 
	`totalFiles` INTEGER NOT NULL DEFAULT '0', 
	source VARCHAR(16) NOT NULL DEFAULT 'batch', 
	`sourceDir` VARCHAR(1024), 
	`sourceKey` VARCHAR(64), 
	`processId` INTEGER NOT NULL DEFAULT '1', 
	`categoryMappingId` INTEGER NOT NULL DEFAULT '1', 
	pipeline JSON, 
	`createdAt` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), 
	`completedAt` DATETIME(3), 
	PRIMARY KEY (id), 
	CONSTRAINT uq_batch_date_number UNIQUE (`batchDate`, `batchNumber`), 
	CONSTRAINT uq_batch_source UNIQUE (`sourceKey`)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE INDEX ix_batch_status ON `batchStatus` (status);

CREATE TABLE processing_logs (
	id INTEGER NOT NULL AUTO_INCREMENT, 
	batch_id INTEGER NOT NULL, 
	call_id INTEGER, 
	file_name VARCHAR(255), 
	stage_name VARCHAR(32) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	attempt INTEGER NOT NULL DEFAULT '1', 
	error_message TEXT, 
	details JSON, 
	duration_ms INTEGER, 
	created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), 
	PRIMARY KEY (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE INDEX ix_pl_batch_status_stage ON processing_logs (batch_id, status, stage_name);

CREATE INDEX ix_pl_call ON processing_logs (call_id);

CREATE TABLE `schemaVersion` (
	version INTEGER NOT NULL, 
	`appliedAt` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), 
	PRIMARY KEY (version)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE task (
	id VARCHAR(36) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	`batchId` INTEGER, 
	request JSON NOT NULL, 
	result JSON, 
	error TEXT, 
	`createdAt` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), 
	`updatedAt` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), 
	PRIMARY KEY (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE INDEX ix_task_state ON task (state);

CREATE TABLE `call` (
	id INTEGER NOT NULL AUTO_INCREMENT, 
	`batchId` INTEGER NOT NULL, 
	`audioName` VARCHAR(255) NOT NULL, 
	status VARCHAR(32) NOT NULL DEFAULT 'Pending', 
	lang VARCHAR(16) NOT NULL DEFAULT 'unknown', 
	`languageId` INTEGER NOT NULL DEFAULT '0', 
	`audioDuration` FLOAT NOT NULL DEFAULT '0', 
	`processId` INTEGER NOT NULL DEFAULT '1', 
	`categoryMappingId` INTEGER NOT NULL DEFAULT '1', 
	`createdAt` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), 
	`updatedAt` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), 
	PRIMARY KEY (id), 
	CONSTRAINT uq_call_batch_audio UNIQUE (`batchId`, `audioName`), 
	FOREIGN KEY(`batchId`) REFERENCES `batchStatus` (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE INDEX ix_call_audio ON `call` (`audioName`);

CREATE INDEX ix_call_batch_status ON `call` (`batchId`, status);

CREATE TABLE `callMetadata` (
	id INTEGER NOT NULL AUTO_INCREMENT, 
	`batchId` INTEGER NOT NULL, 
	`audioName` VARCHAR(255) NOT NULL, 
	`clientCode` VARCHAR(64) NOT NULL, 
	`agentId` VARCHAR(64) NOT NULL, 
	`callStartTime` DATETIME NOT NULL, 
	`callEndTime` DATETIME, 
	extra JSON, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_cm_batch_audio UNIQUE (`batchId`, `audioName`), 
	FOREIGN KEY(`batchId`) REFERENCES `batchStatus` (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE INDEX ix_cm_client ON `callMetadata` (`batchId`, `clientCode`);

CREATE TABLE `fileDistribution` (
	id INTEGER NOT NULL AUTO_INCREMENT, 
	`batchId` INTEGER NOT NULL, 
	file VARCHAR(255) NOT NULL, 
	`gpuIp` VARCHAR(50), 
	`denoiseDone` TINYINT NOT NULL DEFAULT '0', 
	`ivrDone` TINYINT NOT NULL DEFAULT '0', 
	`lidDone` TINYINT NOT NULL DEFAULT '0', 
	`sttDone` TINYINT NOT NULL DEFAULT '0', 
	`llm1Done` TINYINT NOT NULL DEFAULT '0', 
	`llm2Done` TINYINT NOT NULL DEFAULT '0', 
	`filePath` VARCHAR(1024) NOT NULL DEFAULT '', 
	`ivrTrimOffset` FLOAT, 
	`failedStage` VARCHAR(32), 
	`failureReason` TEXT, 
	`updatedAt` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), 
	PRIMARY KEY (id), 
	CONSTRAINT uq_fd_batch_file UNIQUE (`batchId`, file), 
	FOREIGN KEY(`batchId`) REFERENCES `batchStatus` (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE `tradeMetadata` (
	id INTEGER NOT NULL AUTO_INCREMENT, 
	`batchId` INTEGER NOT NULL, 
	`tradeId` VARCHAR(64) NOT NULL, 
	`clientCode` VARCHAR(64) NOT NULL, 
	symbol VARCHAR(64) NOT NULL, 
	side VARCHAR(8) NOT NULL, 
	quantity NUMERIC(20, 6) NOT NULL, 
	price NUMERIC(20, 6) NOT NULL, 
	`tradeTime` DATETIME NOT NULL, 
	`audioName` VARCHAR(255), 
	extra JSON, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_tm_batch_trade UNIQUE (`batchId`, `tradeId`), 
	FOREIGN KEY(`batchId`) REFERENCES `batchStatus` (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE INDEX ix_tm_audio ON `tradeMetadata` (`batchId`, `audioName`);

CREATE TABLE `auditAnswer` (
	id INTEGER NOT NULL AUTO_INCREMENT, 
	`callId` INTEGER NOT NULL, 
	`questionId` VARCHAR(64) NOT NULL, 
	`questionOrder` INTEGER NOT NULL, 
	question TEXT NOT NULL, 
	answer TEXT NOT NULL, 
	evidence TEXT, 
	source VARCHAR(16) NOT NULL DEFAULT 'llm2', 
	`createdAt` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), 
	PRIMARY KEY (id), 
	CONSTRAINT uq_answer_call_question UNIQUE (`callId`, `questionId`), 
	FOREIGN KEY(`callId`) REFERENCES `call` (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE `callConversation` (
	id INTEGER NOT NULL AUTO_INCREMENT, 
	`callId` INTEGER NOT NULL, 
	`tradeIndex` INTEGER NOT NULL, 
	`tradeId` VARCHAR(64), 
	symbol VARCHAR(64), 
	side VARCHAR(8), 
	quantity NUMERIC(20, 6), 
	price NUMERIC(20, 6), 
	`orderType` VARCHAR(16), 
	evidence TEXT, 
	`createdAt` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), 
	PRIMARY KEY (id), 
	CONSTRAINT uq_conv_call_trade UNIQUE (`callId`, `tradeIndex`), 
	FOREIGN KEY(`callId`) REFERENCES `call` (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE `lidStatus` (
	id INTEGER NOT NULL AUTO_INCREMENT, 
	`batchId` INTEGER NOT NULL, 
	`callId` INTEGER NOT NULL, 
	`audioName` VARCHAR(255) NOT NULL, 
	language VARCHAR(16) NOT NULL, 
	confidence FLOAT, 
	`audioDuration` FLOAT NOT NULL, 
	`createdAt` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), 
	PRIMARY KEY (id), 
	FOREIGN KEY(`batchId`) REFERENCES `batchStatus` (id), 
	FOREIGN KEY(`callId`) REFERENCES `call` (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE INDEX ix_lid_call ON `lidStatus` (`callId`);

CREATE TABLE `tradeAudioMapping` (
	id INTEGER NOT NULL AUTO_INCREMENT, 
	`batchId` INTEGER NOT NULL, 
	`tradeId` VARCHAR(64) NOT NULL, 
	`audioName` VARCHAR(255) NOT NULL, 
	`callId` INTEGER, 
	`distanceSeconds` FLOAT NOT NULL DEFAULT '0', 
	PRIMARY KEY (id), 
	CONSTRAINT uq_tam_batch_trade UNIQUE (`batchId`, `tradeId`), 
	FOREIGN KEY(`batchId`) REFERENCES `batchStatus` (id), 
	FOREIGN KEY(`callId`) REFERENCES `call` (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE INDEX ix_tam_call ON `tradeAudioMapping` (`callId`);

CREATE TABLE transcript (
	id INTEGER NOT NULL AUTO_INCREMENT, 
	`callId` INTEGER NOT NULL, 
	`segmentIndex` INTEGER NOT NULL, 
	`startTime` FLOAT NOT NULL, 
	`endTime` FLOAT NOT NULL, 
	text TEXT NOT NULL, 
	speaker VARCHAR(32), 
	`avgLogprob` FLOAT, 
	`noSpeechProb` FLOAT, 
	language VARCHAR(16), 
	PRIMARY KEY (id), 
	CONSTRAINT uq_transcript_call_segment UNIQUE (`callId`, `segmentIndex`), 
	FOREIGN KEY(`callId`) REFERENCES `call` (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;
