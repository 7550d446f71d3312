// Starts DynamoDB Local listening on loopback only (devtools/embedded_db.py compiles and runs it).
//
// DynamoDBLocal.jar has no bind option: its DynamoDBProxyServer builds a Jetty Server(port),
// whose connector listens on every interface. This does what the jar's own main does (build the
// server from the same command-line arguments, then start it), but first sets the host of the
// Jetty connector, which Jetty binds when the server starts. Reflection keeps it independent of
// the jar's Jetty version at compile time. Telemetry is never configured, so none is sent.
import java.lang.reflect.Field;

public final class DynamoDBLocalLoopback {
    private DynamoDBLocalLoopback() {}

    public static void main(String[] args) throws Exception {
        String host = System.getProperty("dynamodblocal.host", "127.0.0.1");
        Class<?> runner =
                Class.forName("software.amazon.dynamodb.services.local.main.ServerRunner");
        Object proxy =
                runner.getMethod("createServerFromCommandLineArgs", String[].class)
                        .invoke(null, (Object) args);
        Field field = proxy.getClass().getDeclaredField("server");
        field.setAccessible(true);
        Object server = field.get(proxy);
        Object[] connectors =
                (Object[]) server.getClass().getMethod("getConnectors").invoke(server);
        if (connectors.length == 0) {
            throw new IllegalStateException("DynamoDB Local has no connector to bind");
        }
        for (Object connector : connectors) {
            connector.getClass().getMethod("setHost", String.class).invoke(connector, host);
        }
        // start() prints "Could not start server on port N: Address already in use" and stops
        // the server instead of throwing; exit non-zero so the caller can retry another port.
        proxy.getClass().getMethod("start").invoke(proxy);
        if (!(Boolean) server.getClass().getMethod("isStarted").invoke(server)) {
            System.exit(1);
        }
        server.getClass().getMethod("join").invoke(server);
    }
}
