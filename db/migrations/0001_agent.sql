ALTER TABLE `clusters` ADD `agent_info` text;--> statement-breakpoint
CREATE UNIQUE INDEX `clusters_agent_credential` ON `clusters` (`agent_credential_hash`);