/*
 * A minimal libvncclient viewer for tests/libvncclient.rs: it behaves like Remmina and KRDC,
 * which are built on the same library, as far as following the server's screen size goes.
 *
 *   libvncclient_viewer HOST:PORT SIZES TIMEOUT_SECONDS
 *   libvncclient_viewer HOST:PORT UPDATES TIMEOUT_SECONDS ENCODINGS PPM
 *
 * Connects (no password; over VeNCrypt X509None when the server lists it first, trusting the
 * certificate file in $KVNC_CA_FILE as Remmina does with the CA file its X509 dialog asks
 * for), keeps reading updates and prints "size WxH" (flushed) each time
 * libvncclient adopts a framebuffer size: once at connect, then on every DesktopSize or
 * ExtendedDesktopSize rect the library accepts, since it calls MallocFrameBuffer for exactly
 * those. Exits 0 after SIZES sizes, 2 on timeout, 1 when the connection fails or breaks.
 * libvncclient's own log goes to stderr.
 *
 * With ENCODINGS and PPM it instead asks for ENCODINGS (libvncclient's encodings string, e.g.
 * "zlib" or "hextile", as Remmina sets it) and, after each complete FramebufferUpdate, writes
 * what it shows to PPM (binary P6, overwritten each time) and prints "update N copies C" (C:
 * the CopyRect rects received so far, copied by libvncclient's own code); it exits 0 after
 * UPDATES updates.
 */
#include <rfb/rfbclient.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int sizes_seen;
static int updates_seen;
static int copies_seen;
static const char *ppm_path;
/* libvncclient's own CopyRect handler, which counting_copy calls. */
static GotCopyRectProc library_copy;

static void counting_copy(rfbClient *client, int src_x, int src_y, int w, int h, int dest_x, int dest_y) {
    copies_seen++;
    library_copy(client, src_x, src_y, w, h, dest_x, dest_y);
}

/* Writes the framebuffer as RGB through the client's pixel format (32 bpp, as set in main). */
static void finished_update(rfbClient *client) {
    FILE *f = fopen(ppm_path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", ppm_path);
        return;
    }
    const rfbPixelFormat *pf = &client->format;
    const uint32_t *pixels = (const uint32_t *)client->frameBuffer;
    fprintf(f, "P6\n%d %d\n255\n", client->width, client->height);
    for (int i = 0; i < client->width * client->height; i++) {
        uint32_t p = pixels[i];
        unsigned char rgb[3] = {
            (unsigned char)((p >> pf->redShift) & pf->redMax),
            (unsigned char)((p >> pf->greenShift) & pf->greenMax),
            (unsigned char)((p >> pf->blueShift) & pf->blueMax),
        };
        fwrite(rgb, 1, 3, f);
    }
    fclose(f);
    updates_seen++;
    printf("update %d copies %d\n", updates_seen, copies_seen);
    fflush(stdout);
}

/* libvncclient decodes into client->frameBuffer, so it must always be width x height. */
static rfbBool malloc_frame_buffer(rfbClient *client) {
    size_t bytes = (size_t)client->width * client->height * client->format.bitsPerPixel / 8;
    free(client->frameBuffer);
    client->frameBuffer = malloc(bytes ? bytes : 1);
    if (!client->frameBuffer) {
        fprintf(stderr, "cannot allocate %zu bytes\n", bytes);
        return FALSE;
    }
    printf("size %dx%d\n", client->width, client->height);
    /* The test reads stdout through a pipe while we run. */
    fflush(stdout);
    sizes_seen++;
    return TRUE;
}

/* Asked for when the server chose a TLS login: the CA file to verify its certificate with. */
static rfbCredential *get_credential(rfbClient *client, int type) {
    (void)client;
    const char *ca = getenv("KVNC_CA_FILE");
    if (type != rfbCredentialTypeX509 || !ca) {
        return NULL;
    }
    rfbCredential *credential = calloc(1, sizeof(rfbCredential));
    if (credential) {
        credential->x509Credential.x509CACertFile = strdup(ca);
    }
    return credential;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: %s HOST:PORT SIZES TIMEOUT_SECONDS [ENCODINGS PPM]\n", argv[0]);
        return 1;
    }
    const char *colon = strrchr(argv[1], ':');
    int wanted = atoi(argv[2]);
    double deadline = now_seconds() + atof(argv[3]);
    if (!colon || wanted < 1) {
        fprintf(stderr, "bad arguments\n");
        return 1;
    }

    /* 32-bit true colour: 8 bits per sample, 3 samples, 4 bytes per pixel. */
    rfbClient *client = rfbGetClient(8, 3, 4);
    client->MallocFrameBuffer = malloc_frame_buffer;
    client->GetCredential = get_credential;
    if (argc == 6) {
        client->appData.encodingsString = argv[4];
        ppm_path = argv[5];
        client->FinishedFrameBufferUpdate = finished_update;
        library_copy = client->GotCopyRect;
        client->GotCopyRect = counting_copy;
    }
    int *seen = argc == 6 ? &updates_seen : &sizes_seen;
    /* Set directly: rfbInitClient's own argv parsing adds 5900 to ports below 5900. */
    client->serverHost = strndup(argv[1], (size_t)(colon - argv[1]));
    client->serverPort = atoi(colon + 1);
    /* rfbInitClient frees the client itself when it fails. */
    if (!rfbInitClient(client, NULL, NULL)) {
        fprintf(stderr, "cannot connect to %s\n", argv[1]);
        return 1;
    }

    int status = 2;
    while (*seen < wanted) {
        if (now_seconds() >= deadline) {
            fprintf(stderr, "timeout after %d sizes / %d updates\n", sizes_seen, updates_seen);
            break;
        }
        int ready = WaitForMessage(client, 100000);
        if (ready < 0 || (ready > 0 && !HandleRFBServerMessage(client))) {
            fprintf(stderr, "connection broke after %d sizes / %d updates\n", sizes_seen, updates_seen);
            status = 1;
            break;
        }
    }
    if (*seen >= wanted) {
        status = 0;
    }
    free(client->frameBuffer);
    client->frameBuffer = NULL;
    rfbClientCleanup(client);
    return status;
}
