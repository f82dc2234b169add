ALTER TABLE `node_runs` ADD `cache_key` text;--> statement-breakpoint
ALTER TABLE `node_runs` ADD `cached_from` text;--> statement-breakpoint
CREATE INDEX `node_runs_cache` ON `node_runs` (`cache_key`,`status`,`finished_at`);