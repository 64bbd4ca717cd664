-- Generated from cofid/store/tables.py by `cofid db ddl`; do not edit by hand.
CREATE TABLE `tradeVerdict` (
	id INTEGER NOT NULL AUTO_INCREMENT, 
	`batchId` INTEGER NOT NULL, 
	`tradeId` VARCHAR(64) NOT NULL, 
	`audioName` VARCHAR(255), 
	`callId` INTEGER, 
	verdict VARCHAR(16) NOT NULL, 
	reason TEXT, 
	fields JSON, 
	evidence JSON, 
	`decidedAt` DATETIME(3) NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_tv_batch_trade UNIQUE (`batchId`, `tradeId`), 
	FOREIGN KEY(`batchId`) REFERENCES `batchStatus` (id), 
	FOREIGN KEY(`callId`) REFERENCES `call` (id)
)ENGINE=InnoDB CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE INDEX ix_tv_batch_verdict ON `tradeVerdict` (`batchId`, verdict);
