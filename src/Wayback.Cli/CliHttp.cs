using System.Text;
using System.Text.Json.Nodes;

namespace Wayback.Cli;

/// <summary>
/// The HTTP handler of the CLI's calls to the server. A short command (a restore of a small file) spends most of its
/// time on HttpClient's first request, so the handler leaves out the stages the CLI never uses: following
/// redirects (a redirect would drop the token anyway; the answer is reported instead), cookies, and trace-context
/// headers for distributed tracing. Each is code the first request would otherwise load and compile.
/// </summary>
internal static class CliHttp
{
    public static HttpClient Create(Uri server, TimeSpan timeout) =>
        new(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false, ActivityHeadersPropagator = null })
        {
            BaseAddress = server,
            Timeout = timeout,
        };

    /// <summary>A JSON request body. Built as a <see cref="JsonObject"/>: the native build has no reflection to serialize objects with.</summary>
    public static HttpContent Json(JsonObject body) => new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
}
