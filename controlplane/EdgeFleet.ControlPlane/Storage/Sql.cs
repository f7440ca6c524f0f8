using System.Data.Common;

namespace EdgeFleet.ControlPlane.Storage;

/// <summary>Small helpers over ADO.NET so that stores read as SQL, with parameters, on either database.</summary>
public static class Sql
{
    public static DbCommand Command(this DbConnection connection, string sql, params (string Name, object? Value)[] parameters)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var p = command.CreateParameter();
            p.ParameterName = name;
            p.Value = value ?? DBNull.Value;
            command.Parameters.Add(p);
        }

        return command;
    }

    public static async Task<int> ExecuteAsync(this DbConnection connection, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = connection.Command(sql, parameters);
        return await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    public static async Task<int> ExecuteAsync(this DbConnection connection, DbTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = connection.Command(sql, parameters);
        command.Transaction = transaction;
        return await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    public static async Task<object?> ScalarAsync(this DbConnection connection, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = connection.Command(sql, parameters);
        var value = await command.ExecuteScalarAsync().ConfigureAwait(false);
        return value is DBNull ? null : value;
    }

    public static async Task<List<T>> QueryAsync<T>(this DbConnection connection, string sql, Func<DbDataReader, T> map, params (string Name, object? Value)[] parameters)
    {
        ArgumentNullException.ThrowIfNull(map);
        using var command = connection.Command(sql, parameters);
        using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        var list = new List<T>();
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            list.Add(map(reader));
        }

        return list;
    }

    public static async Task<List<T>> QueryAsync<T>(this DbConnection connection, DbTransaction? transaction, string sql, Func<DbDataReader, T> map,
        params (string Name, object? Value)[] parameters)
    {
        ArgumentNullException.ThrowIfNull(map);
        using var command = connection.Command(sql, parameters);
        command.Transaction = transaction;
        using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        var list = new List<T>();
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            list.Add(map(reader));
        }

        return list;
    }

    public static async Task<object?> ScalarAsync(this DbConnection connection, DbTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = connection.Command(sql, parameters);
        command.Transaction = transaction;
        var value = await command.ExecuteScalarAsync().ConfigureAwait(false);
        return value is DBNull ? null : value;
    }

    public static async Task<T?> QuerySingleAsync<T>(this DbConnection connection, string sql, Func<DbDataReader, T> map, params (string Name, object? Value)[] parameters)
        where T : class =>
        (await connection.QueryAsync(sql, map, parameters).ConfigureAwait(false)).FirstOrDefault();

    public static string? NullableString(this DbDataReader reader, int i)
    {
        ArgumentNullException.ThrowIfNull(reader);
        return reader.IsDBNull(i) ? null : reader.GetString(i);
    }

    public static long? NullableLong(this DbDataReader reader, int i)
    {
        ArgumentNullException.ThrowIfNull(reader);
        return reader.IsDBNull(i) ? null : Convert.ToInt64(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);
    }

    public static double? NullableDouble(this DbDataReader reader, int i)
    {
        ArgumentNullException.ThrowIfNull(reader);
        return reader.IsDBNull(i) ? null : Convert.ToDouble(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);
    }

    public static long Long(this DbDataReader reader, int i)
    {
        ArgumentNullException.ThrowIfNull(reader);
        return Convert.ToInt64(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);
    }

    public static bool Bool(this DbDataReader reader, int i) => reader.Long(i) != 0;

    public static DateTimeOffset Time(this DbDataReader reader, int i) => DateTimeOffset.FromUnixTimeMilliseconds(reader.Long(i));

    public static DateTimeOffset? NullableTime(this DbDataReader reader, int i) =>
        reader.NullableLong(i) is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
}
