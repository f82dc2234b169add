ALTER TABLE `dag_runs` ADD `state_token` text DEFAULT '' NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX `clusters_nats_key` ON `clusters` (`nats_user_public_key`);--> statement-breakpoint
CREATE INDEX `node_runs_cluster` ON `node_runs` (`cluster_id`,`status`);