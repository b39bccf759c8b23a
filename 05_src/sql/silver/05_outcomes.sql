-- silver.outcomes: the observed label of each application, the version ingested last.
DROP TABLE IF EXISTS silver.outcomes;
CREATE TABLE silver.outcomes AS
SELECT DISTINCT ON (o.application_id)
    o.application_id,
    o.observed_at,
    o.serious_dlq,
    o.ingested_at,
    o._source_file
FROM bronze.outcomes AS o
WHERE o.application_id IS NOT NULL
ORDER BY o.application_id, o.ingested_at DESC NULLS LAST, o._source_file DESC, o._source_line DESC;

ALTER TABLE silver.outcomes ADD PRIMARY KEY (application_id);
ANALYZE silver.outcomes;
