-- silver.repayments: one row per loan and due date, the version ingested last.
DROP TABLE IF EXISTS silver.repayments;
CREATE TABLE silver.repayments AS
SELECT DISTINCT ON (r.application_id, r.due_date)
    r.application_id,
    r.due_date,
    r.amount_due,
    r.amount_paid,
    r.days_late,
    r.ingested_at,
    r._source_file
FROM bronze.repayments AS r
WHERE r.application_id IS NOT NULL AND r.due_date IS NOT NULL
ORDER BY r.application_id, r.due_date, r.ingested_at DESC NULLS LAST, r._source_file DESC, r._source_line DESC;

ALTER TABLE silver.repayments ADD PRIMARY KEY (application_id, due_date);
ANALYZE silver.repayments;
