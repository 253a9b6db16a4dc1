using Wayback.Server.Databases;

namespace Wayback.Server.Api;

/// <summary>
/// The one place where the core's <see cref="DomainException"/>s become HTTP: each kind has its status and
/// protocol code here and nowhere else (LiteFS reads only the code; EPOSMISMATCH makes it resync).
/// </summary>
internal static class ErrorMapping
{
    public static ApiException ToApi(DomainException e) => e switch
    {
        NotFoundException => new ApiException(404, ErrorCodes.NotFound, e.Message),
        OutOfRangeException r => new ApiException(400, ErrorCodes.OutOfRange, e.Message)
        {
            First = PointJson.From(r.Window.First),
            Last = PointJson.From(r.Window.Last),
        },
        PositionMismatchException m => new ApiException(409, ErrorCodes.PositionMismatch, e.Message, m.Position),
        BadInputException b => b.Kind switch
        {
            BadInputKind.Name => new ApiException(400, ErrorCodes.BadName, e.Message),
            BadInputKind.Ltx => new ApiException(400, ErrorCodes.BadLtx, e.Message),
            BadInputKind.Checksum => new ApiException(400, ErrorCodes.BadChecksum, e.Message),
            BadInputKind.TooLarge => new ApiException(413, ErrorCodes.TooLarge, e.Message),
            _ => new ApiException(400, ErrorCodes.BadRequest, e.Message),
        },
        StorageUnavailableException => new ApiException(503, ErrorCodes.Storage, e.Message),
        ConflictException c => new ApiException(409, c.Kind == ConflictKind.Exists ? ErrorCodes.Exists : ErrorCodes.Trashed, e.Message),
        InconsistencyException => new ApiException(500, ErrorCodes.Internal, e.Message),
        KeyMissingException => new ApiException(500, ErrorCodes.KeyMissing, e.Message),
        TamperedException => new ApiException(500, ErrorCodes.Tampered, e.Message),
        Points.QueryException q => q.Kind switch
        {
            Points.QueryFailure.Refused => new ApiException(400, ErrorCodes.QueryRefused, e.Message),
            Points.QueryFailure.Invalid => new ApiException(400, ErrorCodes.BadQuery, e.Message),
            Points.QueryFailure.Limit => new ApiException(422, ErrorCodes.QueryLimit, e.Message),
            _ => new ApiException(404, ErrorCodes.NotFound, e.Message),
        },
        _ => new ApiException(500, ErrorCodes.Internal, e.Message),
    };
}
