-- Supabase: the product's web app reads these tables straight from Supabase's API (PostgREST),
-- which runs each request as the role `authenticated` (or `anon`, without a user) with the
-- caller's JWT claims in `request.jwt.claims`. Our own policies are for flowai_app_user and
-- flowai.user_id only; this adds the same reads for `authenticated`, keyed on auth.uid(), and
-- takes back the rights Supabase's default privileges hand out on every new table in public
-- (ALL to anon, authenticated and service_role), since the server is the only writer.
--
-- Nothing here happens outside Supabase. Roles are cluster-wide, so the roles alone prove
-- nothing: the database must also have Supabase's auth.uid() (returning uuid). Nothing is ever
-- created or changed in Supabase's own schemas; auth.uid() is only called.
--
-- flowai_supabase_access() is idempotent and cheap when nothing is missing: `flowai migrate`
-- (and every start-up) runs it after the numbered migrations and after the job queue's schema,
-- so a database that became a Supabase one after it was migrated, or tables that a later
-- migration or the job queue created, get the same rules on the next run. A later migration
-- that adds a table users may read extends the lists below with CREATE OR REPLACE.

CREATE OR REPLACE FUNCTION flowai_supabase_detected() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
               SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = 'auth' AND p.proname = 'uid' AND p.pronargs = 0
                 AND p.prorettype = 'uuid'::regtype)
       AND (SELECT count(*) FROM pg_roles
            WHERE rolname IN ('anon', 'authenticated', 'service_role')) = 3
$$;

-- Which of our relations each Supabase role may read: 'member' rows belong to projects the
-- caller is a member of, 'own' rows carry the caller's user id, 'own_or_member' either.
CREATE OR REPLACE FUNCTION flowai_supabase_readable() RETURNS TABLE (relname text, rule text)
LANGUAGE sql IMMUTABLE AS $$
    VALUES ('video_projects', 'member'), ('project_members', 'member'),
           ('doc_versions', 'member'), ('video_tracks', 'member'), ('video_clips', 'member'),
           ('user_credits', 'own'), ('credit_holds', 'own'), ('credit_transactions', 'own'),
           ('voice_clones', 'own'), ('jobs', 'own_or_member')
$$;

-- Every relation of ours in public: the readable ones, the server's own (document log,
-- states, bookkeeping), and the job queue's (procrastinate_*), with the sequences they own.
CREATE OR REPLACE FUNCTION flowai_supabase_relations() RETURNS TABLE (rel regclass, kind "char")
LANGUAGE sql STABLE AS $$
    WITH ours AS (
        SELECT c.oid, c.relkind FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND (c.relname IN (SELECT r.relname FROM flowai_supabase_readable() r)
               OR c.relname IN ('doc_updates', 'doc_states', 'credit_accounts', 'revoked_users',
                                'job_queue_schema', 'schema_migrations')
               OR c.relname LIKE 'procrastinate\_%')
    )
    SELECT oid::regclass, relkind FROM ours
    UNION
    SELECT s.oid::regclass, s.relkind FROM pg_class s
    JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    WHERE s.relkind = 'S' AND d.refobjid IN (SELECT oid FROM ours)
$$;

CREATE OR REPLACE FUNCTION flowai_supabase_access() RETURNS text
LANGUAGE plpgsql AS $body$
DECLARE
    r record;
    api_role text;
    want text[];
    have text[];
    changes integer := 0;
    policy_sql text;
BEGIN
    IF NOT flowai_supabase_detected() THEN
        RETURN 'not supabase';
    END IF;
    -- One runner at a time (migrate and the job queue's schema step may overlap).
    PERFORM pg_advisory_xact_lock(1181579034);  -- any constant, the same everywhere

    -- Membership under the caller's Supabase identity. SECURITY DEFINER so that the policy
    -- on project_members does not recurse into itself; auth.uid() still reads the request's
    -- claims (settings are per session, not per role). Member ids are text: a Supabase user
    -- is stored as its uuid in canonical form, which is what uuid::text gives.
    IF to_regprocedure('public.flowai_auth_is_member(uuid)') IS NULL THEN
        EXECUTE $fn$
            CREATE FUNCTION public.flowai_auth_is_member(p uuid) RETURNS boolean
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
                SELECT EXISTS (
                    SELECT 1 FROM public.project_members m
                    WHERE m.project_id = p AND m.user_id = (SELECT auth.uid())::text)
            $$
        $fn$;
        changes := changes + 1;
    END IF;

    -- Table rights: anon nothing; authenticated SELECT on the readable tables (RLS filters);
    -- service_role (it bypasses RLS) reads everything and writes nothing.
    FOR r IN SELECT s.rel, s.kind, c.relname::text AS name, c.relacl
             FROM flowai_supabase_relations() s JOIN pg_class c ON c.oid = s.rel LOOP
        FOREACH api_role IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
            want := CASE
                WHEN r.kind = 'S' THEN '{}'::text[]
                WHEN api_role = 'service_role' THEN ARRAY['SELECT']
                WHEN api_role = 'authenticated'
                     AND r.name IN (SELECT x.relname FROM flowai_supabase_readable() x)
                     THEN ARRAY['SELECT']
                ELSE '{}'::text[] END;
            SELECT coalesce(array_agg(a.privilege_type ORDER BY a.privilege_type), '{}')
              INTO have
              FROM aclexplode(r.relacl) a
             WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = api_role);
            IF have IS DISTINCT FROM want THEN
                EXECUTE format('REVOKE ALL ON %s %s FROM %I',
                               CASE WHEN r.kind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                               r.rel, api_role);
                IF want <> '{}' THEN
                    EXECUTE format('GRANT SELECT ON TABLE %s TO %I', r.rel, api_role);
                END IF;
                changes := changes + 1;
            END IF;
        END LOOP;
    END LOOP;

    -- Functions: the API exposes every function the role may execute as /rpc/<name>. Ours
    -- and the job queue's are for the server (it owns them); only the membership test the
    -- policies call stays executable, by authenticated.
    FOR r IN SELECT p.oid::regprocedure AS fn, p.proname::text AS name FROM pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace
               AND (p.proname LIKE 'flowai\_%' OR p.proname LIKE 'procrastinate\_%') LOOP
        IF r.name <> 'flowai_auth_is_member'
           AND (has_function_privilege('anon', r.fn, 'EXECUTE')
                OR has_function_privilege('authenticated', r.fn, 'EXECUTE')
                OR has_function_privilege('service_role', r.fn, 'EXECUTE')) THEN
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, anon, authenticated, '
                           'service_role', r.fn);
            changes := changes + 1;
        ELSIF r.name = 'flowai_auth_is_member'
              AND (has_function_privilege('anon', r.fn, 'EXECUTE')
                   OR NOT has_function_privilege('authenticated', r.fn, 'EXECUTE')) THEN
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, anon, service_role', r.fn);
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO authenticated', r.fn);
            changes := changes + 1;
        END IF;
    END LOOP;
    -- The server's own path (flowai_app_user) keeps its rights on its two helpers.
    IF NOT has_function_privilege('flowai_app_user', 'flowai_user_id()', 'EXECUTE')
       OR NOT has_function_privilege('flowai_app_user', 'flowai_is_member(uuid)', 'EXECUTE') THEN
        GRANT EXECUTE ON FUNCTION flowai_user_id(), flowai_is_member(uuid) TO flowai_app_user;
    END IF;

    -- Read policies for authenticated, next to the flowai_app_user ones (policies are
    -- per role, so neither path sees the other's). Created when missing: an existing one is
    -- left alone, so that a re-run takes no table lock.
    FOR r IN SELECT x.relname AS name, x.rule FROM flowai_supabase_readable() x LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_policies
                              WHERE schemaname = 'public' AND tablename = r.name
                                AND policyname = 'supabase_read');
        policy_sql := CASE r.rule
            WHEN 'member' THEN format('public.flowai_auth_is_member(%I)',
                                      CASE WHEN r.name = 'video_projects' THEN 'id'
                                           ELSE 'project_id' END)
            WHEN 'own' THEN 'user_id = (SELECT auth.uid())::text'
            ELSE 'user_id = (SELECT auth.uid())::text OR (project_id IS NOT NULL'
                 ' AND public.flowai_auth_is_member(project_id))' END;
        EXECUTE format('CREATE POLICY supabase_read ON public.%I FOR SELECT TO authenticated '
                       'USING (%s)', r.name, policy_sql);
        changes := changes + 1;
    END LOOP;
    RETURN format('supabase: %s change(s)', changes);
END
$body$;

SELECT flowai_supabase_access();
