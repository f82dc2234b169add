ALTER TABLE `node_runs` ADD `failed_partitions` text;--> statement-breakpoint
ALTER TABLE `node_runs` ADD `partition_failures` text;