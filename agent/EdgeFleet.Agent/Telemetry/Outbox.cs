using Microsoft.Data.Sqlite;

namespace EdgeFleet.Agent.Telemetry;

/// <summary>Bounds of the outbox: the oldest messages go first when either is exceeded.</summary>
public sealed record OutboxLimits
{
    public long MaxBytes { get; init; } = 100L * 1024 * 1024;

    public TimeSpan MaxAge { get; init; } = TimeSpan.FromDays(7);

    /// <summary>fsync every commit (survives power loss) rather than only a process crash.</summary>
    public bool SynchronousFull { get; init; } = true;
}

/// <summary>A stored message waiting for the broker's acknowledgement.</summary>
public sealed record OutboxItem(long Seq, string Topic, byte[] Payload, DateTimeOffset CreatedAt);

/// <summary>Counters of the outbox.</summary>
public sealed record OutboxStats(long Pending, long PendingBytes, long Evicted, long LastSeq);

/// <summary>
/// The durable outbox (SQLite, WAL): every durable message is written here with its sequence number before it is
/// published, and deleted only when the broker acknowledges it, so an outage or a crash (kill -9 included) loses
/// nothing: on restart the rows are replayed in order. The sequence counter only grows, across restarts. The
/// outbox is bounded by bytes and age; when full the oldest rows are evicted and counted. Thread-safe.
/// </summary>
public sealed class Outbox : IDisposable
{
    private readonly SqliteConnection _db;
    private readonly OutboxLimits _limits;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private long _nextSeq;
    private long _pending;
    private long _pendingBytes;
    private long _evicted;

    public Outbox(string path, OutboxLimits limits, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(limits);
        _limits = limits;
        _time = time;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _db.Open();
        Execute("PRAGMA journal_mode=WAL;");
        Execute(limits.SynchronousFull ? "PRAGMA synchronous=FULL;" : "PRAGMA synchronous=NORMAL;");
        Execute("""
            CREATE TABLE IF NOT EXISTS outbox(
              seq INTEGER PRIMARY KEY,
              topic TEXT NOT NULL,
              payload BLOB NOT NULL,
              created_at INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
            """);
        using (var cmd = _db.CreateCommand())
        {
            cmd.CommandText = """
                SELECT COALESCE((SELECT value FROM meta WHERE key = 'next_seq'), 1),
                       COALESCE((SELECT MAX(seq) + 1 FROM outbox), 1),
                       COALESCE((SELECT value FROM meta WHERE key = 'evicted'), 0),
                       (SELECT COUNT(*) FROM outbox),
                       COALESCE((SELECT SUM(length(payload)) FROM outbox), 0);
                """;
            using var r = cmd.ExecuteReader();
            r.Read();
            _nextSeq = Math.Max(r.GetInt64(0), r.GetInt64(1));
            _evicted = r.GetInt64(2);
            _pending = r.GetInt64(3);
            _pendingBytes = r.GetInt64(4);
        }
    }

    public OutboxStats Stats
    {
        get
        {
            lock (_lock)
            {
                return new OutboxStats(_pending, _pendingBytes, _evicted, _nextSeq - 1);
            }
        }
    }

    /// <summary>
    /// Stores one message: <paramref name="payload"/> receives the sequence number assigned to it (messages carry
    /// their own seq). Returns the seq. The row and the counter are committed together.
    /// </summary>
    public long Enqueue(string topic, Func<long, byte[]> payload) => EnqueueMany([(topic, payload)])[0];

    /// <summary>Stores several messages in one transaction (one fsync).</summary>
    public IReadOnlyList<long> EnqueueMany(IReadOnlyList<(string Topic, Func<long, byte[]> Payload)> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        lock (_lock)
        {
            var seqs = new long[messages.Count];
            var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            long bytes = 0;
            using (var tx = _db.BeginTransaction())
            {
                using var insert = _db.CreateCommand();
                insert.Transaction = tx;
                insert.CommandText = "INSERT INTO outbox(seq, topic, payload, created_at) VALUES ($seq, $topic, $payload, $ts);";
                var pSeq = insert.Parameters.Add("$seq", SqliteType.Integer);
                var pTopic = insert.Parameters.Add("$topic", SqliteType.Text);
                var pPayload = insert.Parameters.Add("$payload", SqliteType.Blob);
                insert.Parameters.AddWithValue("$ts", now);
                var seq = _nextSeq;
                for (var i = 0; i < messages.Count; i++, seq++)
                {
                    var body = messages[i].Payload(seq);
                    pSeq.Value = seq;
                    pTopic.Value = messages[i].Topic;
                    pPayload.Value = body;
                    insert.ExecuteNonQuery();
                    seqs[i] = seq;
                    bytes += body.Length;
                }

                SetMeta(tx, "next_seq", seq);
                tx.Commit();
                _nextSeq = seq;
            }

            _pending += messages.Count;
            _pendingBytes += bytes;
            EnforceLimits();
            return seqs;
        }
    }

    /// <summary>Up to <paramref name="max"/> rows with seq &gt; <paramref name="afterSeq"/>, oldest first.</summary>
    public IReadOnlyList<OutboxItem> ReadAfter(long afterSeq, int max)
    {
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT seq, topic, payload, created_at FROM outbox WHERE seq > $after ORDER BY seq LIMIT $max;";
            cmd.Parameters.AddWithValue("$after", afterSeq);
            cmd.Parameters.AddWithValue("$max", max);
            using var r = cmd.ExecuteReader();
            var items = new List<OutboxItem>();
            while (r.Read())
            {
                items.Add(new OutboxItem(r.GetInt64(0), r.GetString(1), (byte[])r.GetValue(2), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(3))));
            }

            return items;
        }
    }

    /// <summary>Deletes acknowledged rows (rows already evicted are ignored).</summary>
    public void Acknowledge(IReadOnlyCollection<long> seqs)
    {
        ArgumentNullException.ThrowIfNull(seqs);
        if (seqs.Count == 0)
        {
            return;
        }

        lock (_lock)
        {
            using var tx = _db.BeginTransaction();
            using var delete = _db.CreateCommand();
            delete.Transaction = tx;
            delete.CommandText = "DELETE FROM outbox WHERE seq = $seq RETURNING length(payload);";
            var p = delete.Parameters.Add("$seq", SqliteType.Integer);
            foreach (var seq in seqs)
            {
                p.Value = seq;
                if (delete.ExecuteScalar() is long length)
                {
                    _pending--;
                    _pendingBytes -= length;
                }
            }

            tx.Commit();
        }
    }

    /// <summary>Drops rows older than the age limit (call periodically); returns how many.</summary>
    public long EvictExpired()
    {
        lock (_lock)
        {
            return EnforceLimits();
        }
    }

    public void Dispose() => _db.Dispose();

    private long EnforceLimits()
    {
        long evicted = 0;
        var cutoff = (_time.GetUtcNow() - _limits.MaxAge).ToUnixTimeMilliseconds();
        using (var tx = _db.BeginTransaction())
        {
            using var old = _db.CreateCommand();
            old.Transaction = tx;
            old.CommandText = "DELETE FROM outbox WHERE created_at < $cutoff RETURNING length(payload);";
            old.Parameters.AddWithValue("$cutoff", cutoff);
            evicted += DeleteCounting(old);
            while (_pendingBytes > _limits.MaxBytes && _pending > 0)
            {
                // as many of the oldest rows as the excess needs, at the average row size (at least one)
                var average = Math.Max(1, _pendingBytes / _pending);
                var rows = Math.Max(1, (_pendingBytes - _limits.MaxBytes) / average);
                using var oldest = _db.CreateCommand();
                oldest.Transaction = tx;
                oldest.CommandText = "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT $rows) RETURNING length(payload);";
                oldest.Parameters.AddWithValue("$rows", rows);
                evicted += DeleteCounting(oldest);
            }

            if (evicted > 0)
            {
                _evicted += evicted;
                SetMeta(tx, "evicted", _evicted);
            }

            tx.Commit();
        }

        return evicted;
    }

    private long DeleteCounting(SqliteCommand command)
    {
        long rows = 0;
        using var r = command.ExecuteReader();
        while (r.Read())
        {
            rows++;
            _pending--;
            _pendingBytes -= r.GetInt64(0);
        }

        return rows;
    }

    private void SetMeta(SqliteTransaction tx, string key, long value)
    {
        using var cmd = _db.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "INSERT INTO meta(key, value) VALUES ($key, $value) ON CONFLICT(key) DO UPDATE SET value = excluded.value;";
        cmd.Parameters.AddWithValue("$key", key);
        cmd.Parameters.AddWithValue("$value", value);
        cmd.ExecuteNonQuery();
    }

    private void Execute(string sql)
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }
}
