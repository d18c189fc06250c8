DROP TABLE background_tasks;
