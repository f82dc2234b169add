ALTER TABLE `node_runs` ADD `image_ref` text;--> statement-breakpoint
ALTER TABLE `node_runs` ADD `building_since` integer;