// The original in-place Workflow → WorkflowRun migration (issue-to-pr's README:
// relabel Workflow as WorkflowRun, parse `metadata` with apoc.convert.fromJsonMap,
// set workflowType and createdAt, HAS_RUNS, validation queries), re-expressed for
// ../shared/docs/MIGRATION.md the way a careful user would run it today:
// batched with CALL {…} IN TRANSACTIONS, indexes for the lookups, and the
// rules of the spec (status, result, postToGithub, issue references, rejections).
//
// Run by bench/apoc.py statement by statement (auto-commit, as CALL … IN
// TRANSACTIONS needs). Parameters: $batch (rows per transaction) and $snapshot
// (the "now" of the migration, a DateTime). A line `// @repeat batch=A,B` runs
// the statement once per value: the migration first runs in batches of 10,000;
// a batch that hits JSON APOC cannot parse fails as a whole (ON ERROR CONTINUE
// rolls back all of its rows), so the same statement then retries the rows of
// failed batches one row per transaction, and only the bad rows stay behind.
//
// Rows that do not migrate stay `Workflow`, untouched (a temporary label
// `MigChecked` marks the ones already looked at; it is removed at the end).
// Known differences from `etl transform` (all invisible on `etl seed` graphs):
// an Event whose `data` starts with `{` but is not JSON makes its run stay a
// Workflow (ours treats the event as having no data); Java's regex `\s` is
// ASCII whitespace where the transform's is Unicode; and the reason a row was
// refused is not recorded anywhere (ours writes rejected/Workflow.parquet).

// step: index workflow ids
CREATE INDEX mig_workflow_id IF NOT EXISTS FOR (w:Workflow) ON (w.id);

// step: index issue keys
CREATE INDEX mig_issue_key IF NOT EXISTS FOR (i:Issue) ON (i.repoFullName, i.number);

// step: await indexes
CALL db.awaitIndexes(3600);

// step: integer issue numbers
MATCH (i:Issue)
WHERE i.number IS :: FLOAT AND NOT isNaN(i.number) AND i.number = floor(i.number)
  AND abs(i.number) <= 9007199254740992.0
CALL (i) {
  SET i.number = toInteger(i.number)
} IN TRANSACTIONS OF $batch ROWS
RETURN count(*) AS rows;

// step: migrate workflows
// @repeat batch=10000,1
MATCH (w:Workflow)
WHERE w.id IS NOT NULL AND NOT w:MigChecked
  AND w.metadata IS :: STRING AND w.metadata =~ '(?s)\\s*\\{\\s*".*\\}\\s*'
CALL (w) {
  WITH w, apoc.convert.fromJsonMap(w.metadata) AS m
  WITH w, m,
       CASE m.workflowType WHEN 'resolve_issue' THEN 'resolveIssue' ELSE m.workflowType END AS wt,
       CASE WHEN m.postToGithub IS :: BOOLEAN THEN m.postToGithub END AS post,
       COUNT { MATCH (o:Workflow) WHERE o.id = w.id } AS copies
  // Events: first and last timestamp, and the latest terminal event by (timestamp, id).
  CALL (w) {
    OPTIONAL MATCH (w)-[:BELONGS_TO_WORKFLOW]->(e:Event)
    WITH e, CASE WHEN e.type IN ['status', 'error'] THEN
              CASE WHEN e.data =~ '(?s)\\s*\\{.*' THEN apoc.convert.fromJsonMap(e.data) ELSE {} END
            END AS d
    WITH e, d, CASE
        WHEN e.type = 'complete' THEN 'completed'
        WHEN e.type = 'status' AND d.status = 'completed' THEN 'completed'
        WHEN e.type = 'error' AND NOT coalesce(d.recoverable = true, false) THEN 'error'
      END AS term
    ORDER BY e.timestamp IS NOT NULL DESC, e.timestamp DESC, e.id DESC
    RETURN min(e.timestamp) AS firstTs, max(e.timestamp) AS lastTs,
      head(collect(CASE WHEN term IS NOT NULL THEN {status: term, result: CASE
        WHEN term <> 'error' THEN null
        WHEN d.error IS NULL THEN 'unknown error'
        WHEN d.error IS :: STRING THEN
          CASE WHEN trim(d.error) IN ['', '{}'] THEN 'unknown error' ELSE d.error END
        WHEN d.error IS :: MAP AND size(keys(d.error)) = 0 THEN 'unknown error'
        ELSE apoc.convert.toJson(d.error) END} END)) AS decision
  }
  // BASED_ON_ISSUE: every endpoint must be a keyable Issue; the distinct keys.
  CALL (w) {
    OPTIONAL MATCH (w)-[:BASED_ON_ISSUE]->(i:Issue)
    WITH i, i IS NOT NULL AND (i.repoFullName IS NULL OR trim(toString(i.repoFullName)) = ''
         OR NOT (i.number IS :: INTEGER AND 1 <= i.number <= 9007199254740992)) AS bad
    RETURN any(b IN collect(bad) WHERE b) AS relBad,
           collect(DISTINCT CASE WHEN i IS NOT NULL AND NOT bad
                            THEN [i.repoFullName, i.number] END) AS relKeys
  }
  // metadata.issue, in either shape ({number, repoFullName} or {number, owner, repo}).
  WITH w, wt, post, copies, firstTs, lastTs, decision, relBad, relKeys, m.issue AS iss,
       CASE WHEN m.issue IS :: MAP THEN m.issue ELSE {} END AS im
  WITH *, CASE WHEN (im.number IS :: INTEGER OR im.number IS :: FLOAT)
                 AND im.number >= 1 AND im.number <= 9007199254740992
                 AND toFloat(im.number) = floor(toFloat(im.number))
               THEN toInteger(im.number) END AS num,
       CASE WHEN im.repoFullName IS :: STRING
                 AND im.repoFullName =~ '[^/\\s"{}\\[\\]]+/[^/\\s"{}\\[\\]]+'
               THEN im.repoFullName END AS full,
       CASE WHEN im.owner IS :: STRING AND im.owner =~ '[^/\\s"{}\\[\\]]+'
                 AND im.repo IS :: STRING AND im.repo =~ '[^/\\s"{}\\[\\]]+'
               THEN im.owner + '/' + im.repo END AS pair
  WITH *, CASE
      WHEN iss IS NULL THEN false
      WHEN NOT iss IS :: MAP THEN true
      WHEN num IS NULL THEN true
      WHEN im.repoFullName IS NOT NULL AND full IS NULL THEN true
      WHEN full IS NULL AND pair IS NULL THEN true
      WHEN full IS NOT NULL AND pair IS NOT NULL AND full <> pair THEN true
      ELSE false END AS metaBad
  WITH *, CASE WHEN iss IS NOT NULL AND NOT metaBad THEN coalesce(full, pair) END AS metaRepo,
       coalesce(w.created_at, firstTs) AS createdAt
  WITH *, size(relKeys) > 1 OR (size(relKeys) = 1 AND metaRepo IS NOT NULL
          AND (relKeys[0][0] <> metaRepo OR relKeys[0][1] <> num)) AS conflict
  WITH *, coalesce(copies = 1
          AND wt IN ['commentOnIssue', 'resolveIssue', 'identifyPRGoal', 'reviewPullRequest']
          AND createdAt IS NOT NULL AND NOT relBad AND NOT metaBad AND NOT conflict, false) AS ok,
       coalesce(relKeys[0][0], metaRepo) AS refRepo,
       CASE WHEN size(relKeys) = 1 THEN relKeys[0][1] WHEN metaRepo IS NOT NULL THEN num END
         AS refNumber,
       CASE WHEN decision IS NOT NULL THEN decision.status
            WHEN coalesce(lastTs, createdAt) >= $snapshot - duration('PT1H') THEN 'running'
            ELSE 'error' END AS status,
       CASE WHEN decision IS NOT NULL THEN decision.result
            WHEN coalesce(lastTs, createdAt) >= $snapshot - duration('PT1H') THEN null
            ELSE 'no terminal event (abandoned run)' END AS result
  CALL (w, ok) {
    WITH * WHERE NOT ok
    SET w:MigChecked
  }
  CALL (w, ok, wt, createdAt, status, result, post, refRepo, refNumber) {
    WITH * WHERE ok
    REMOVE w:Workflow, w.metadata, w.created_at
    SET w:WorkflowRun, w.workflowType = wt, w.createdAt = createdAt, w.status = status,
        w.result = result, w.postToGithub = post
    WITH *
    CALL (w) {
      MATCH (w)-[b:BASED_ON_ISSUE]->()
      DELETE b
    }
    WITH * WHERE refRepo IS NOT NULL
    // Of several Issues with the key, the one with the lowest elementId (as ours).
    CALL (refRepo, refNumber) {
      OPTIONAL MATCH (i:Issue {repoFullName: refRepo, number: refNumber})
      WITH i ORDER BY elementId(i)
      RETURN head(collect(i)) AS found
    }
    CALL (w, refRepo, refNumber, found) {
      WITH * WHERE found IS NULL
      MERGE (n:Issue {repoFullName: refRepo, number: refNumber})
      MERGE (n)-[:HAS_RUNS]->(w)
    }
    CALL (w, found) {
      WITH * WHERE found IS NOT NULL
      MERGE (found)-[:HAS_RUNS]->(w)
    }
  }
} IN TRANSACTIONS OF $batch ROWS ON ERROR CONTINUE REPORT STATUS AS s
RETURN count(*) AS rows, count(DISTINCT CASE WHEN NOT s.committed THEN s.transactionId END)
  AS failed_batches;

// step: clear marks
MATCH (w:MigChecked)
CALL (w) {
  REMOVE w:MigChecked
} IN TRANSACTIONS OF $batch ROWS
RETURN count(*) AS rows;

// step: drop index workflow ids
DROP INDEX mig_workflow_id IF EXISTS;

// step: drop index issue keys
DROP INDEX mig_issue_key IF EXISTS;

// Validation (MIGRATION.md's invariants that Cypher can check cheaply; each must be 0).

// step: check: workflows left with a valid workflowType
// @check
MATCH (w:Workflow)
WHERE w.metadata IS :: STRING AND w.metadata =~ '(?s)\\s*\\{\\s*".*\\}\\s*'
  AND w.metadata =~ '(?s).*"workflowType"\\s*:\\s*"(commentOnIssue|resolveIssue|resolve_issue|identifyPRGoal|reviewPullRequest)".*'
  AND w.id IS NOT NULL AND COUNT { MATCH (o:Workflow) WHERE o.id = w.id } = 1
  AND (w.created_at IS NOT NULL OR EXISTS { (w)-[:BELONGS_TO_WORKFLOW]->() })
  AND NOT EXISTS { (w)-[:BASED_ON_ISSUE]->() } AND NOT w.metadata CONTAINS '"issue"'
RETURN count(w) AS violations;

// step: check: runs with bad properties
// @check
MATCH (r:WorkflowRun)
WHERE NOT r.workflowType IN ['commentOnIssue', 'resolveIssue', 'identifyPRGoal', 'reviewPullRequest']
   OR NOT r.status IN ['running', 'completed', 'error']
   OR NOT r.createdAt IS :: ZONED DATETIME
   OR r.metadata IS NOT NULL OR r.created_at IS NOT NULL
RETURN count(r) AS violations;

// step: check: runs with more than one issue or a BASED_ON_ISSUE left
// @check
MATCH (r:WorkflowRun)
WHERE COUNT { (:Issue)-[:HAS_RUNS]->(r) } > 1 OR EXISTS { (r)-[:BASED_ON_ISSUE]->() }
RETURN count(r) AS violations;

// step: check: issue numbers not integer
// @check
MATCH (i:Issue)
WHERE NOT i.number IS :: INTEGER
RETURN count(i) AS violations;
