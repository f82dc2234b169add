CREATE TABLE `api_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`name` text NOT NULL,
	`token_hash` text NOT NULL,
	`prefix` text NOT NULL,
	`scope` text NOT NULL,
	`created_at` integer NOT NULL,
	`revoked_at` integer,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_tokens_hash` ON `api_tokens` (`token_hash`);--> statement-breakpoint
CREATE TABLE `clusters` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`name` text NOT NULL,
	`kind` text NOT NULL,
	`labels` text NOT NULL,
	`bootstrap_token_hash` text,
	`bootstrap_expires_at` integer,
	`agent_credential_hash` text,
	`nats_user_public_key` text,
	`registered_at` integer,
	`last_heartbeat_at` integer,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `clusters_workspace_name` ON `clusters` (`workspace_id`,`name`);--> statement-breakpoint
CREATE UNIQUE INDEX `clusters_bootstrap_hash` ON `clusters` (`bootstrap_token_hash`);--> statement-breakpoint
CREATE TABLE `dag_runs` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`dag_id` text NOT NULL,
	`dag_name` text NOT NULL,
	`dag_version` integer NOT NULL,
	`status` text NOT NULL,
	`params` text NOT NULL,
	`cancel_requested` integer DEFAULT false NOT NULL,
	`idempotency_key` text,
	`request_hash` text,
	`schedule_id` text,
	`mlflow_run_id` text,
	`created_at` integer NOT NULL,
	`started_at` integer,
	`finished_at` integer,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`dag_id`) REFERENCES `dags`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `dag_runs_idempotency` ON `dag_runs` (`workspace_id`,`idempotency_key`);--> statement-breakpoint
CREATE INDEX `dag_runs_list` ON `dag_runs` (`workspace_id`,`id`);--> statement-breakpoint
CREATE INDEX `dag_runs_dag` ON `dag_runs` (`workspace_id`,`dag_name`,`id`);--> statement-breakpoint
CREATE INDEX `dag_runs_schedule` ON `dag_runs` (`schedule_id`,`status`);--> statement-breakpoint
CREATE TABLE `dag_versions` (
	`dag_id` text NOT NULL,
	`version` integer NOT NULL,
	`spec` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`dag_id`, `version`),
	FOREIGN KEY (`dag_id`) REFERENCES `dags`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `dags` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`name` text NOT NULL,
	`latest_version` integer NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`deleted_at` integer,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `dags_workspace_name_live` ON `dags` (`workspace_id`,`name`) WHERE deleted_at IS NULL;--> statement-breakpoint
CREATE TABLE `events` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`workspace_id` text NOT NULL,
	`run_id` text,
	`node_id` text,
	`type` text NOT NULL,
	`data` text NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `events_run` ON `events` (`run_id`,`seq`);--> statement-breakpoint
CREATE TABLE `nats_revocations` (
	`public_key` text PRIMARY KEY NOT NULL,
	`cluster_id` text NOT NULL,
	`revoked_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `node_runs` (
	`id` text PRIMARY KEY NOT NULL,
	`run_id` text NOT NULL,
	`node_id` text NOT NULL,
	`status` text NOT NULL,
	`attempt` integer DEFAULT 0 NOT NULL,
	`cluster_id` text,
	`last_seq` integer DEFAULT 0 NOT NULL,
	`partitions_total` integer DEFAULT 0 NOT NULL,
	`partitions_done` integer DEFAULT 0 NOT NULL,
	`partitions_failed` integer DEFAULT 0 NOT NULL,
	`partitions_running` integer DEFAULT 0 NOT NULL,
	`mlflow_run_id` text,
	`message` text,
	`started_at` integer,
	`finished_at` integer,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`run_id`) REFERENCES `dag_runs`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `node_runs_run_node` ON `node_runs` (`run_id`,`node_id`);--> statement-breakpoint
CREATE TABLE `outbox` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`msg_id` text NOT NULL,
	`subject` text NOT NULL,
	`payload` text NOT NULL,
	`created_at` integer NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer NOT NULL,
	`sent_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `outbox_msg_id` ON `outbox` (`msg_id`);--> statement-breakpoint
CREATE INDEX `outbox_pending` ON `outbox` (`sent_at`,`next_attempt_at`);--> statement-breakpoint
CREATE TABLE `schedules` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`name` text NOT NULL,
	`dag_name` text NOT NULL,
	`dag_version` integer,
	`cron` text NOT NULL,
	`timezone` text NOT NULL,
	`params` text NOT NULL,
	`overlap_policy` text NOT NULL,
	`enabled` integer NOT NULL,
	`next_run_at` integer,
	`last_run_at` integer,
	`last_run_id` text,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `schedules_workspace_name` ON `schedules` (`workspace_id`,`name`);--> statement-breakpoint
CREATE INDEX `schedules_due` ON `schedules` (`enabled`,`next_run_at`);--> statement-breakpoint
CREATE TABLE `workspaces` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`created_at` integer NOT NULL
);
