ALTER TABLE `dag_runs` ADD `resumed_from` text;--> statement-breakpoint
ALTER TABLE `node_runs` ADD `reused_from` text;