/* Runs a network exported by `cnnc export` on an input .npy and writes its first output as .npy.
 *
 *   cnnc export models/lenet5.cnn -o out --name lenet5
 *   cc -O2 -DNET=lenet5 -I out examples/deploy/run_model.c out/liblenet5.a -lm -lpthread -ldl
 *   ./a.out out/lenet5.weights x.npy y.npy
 *
 * NET is the --name given to cnnc export; the input is float32, C order, with the network's
 * input shape (batch first). Plain C: stdio and the exported header only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define STR2(a) #a
#define STR(a) STR2(a)
#define API(f) CAT(NET, f)
#include STR(NET.h)

/* Reads a float32 .npy of exactly `elements` values (its header only checked for the dtype). */
static float* read_npy(const char* path, long elements) {
  FILE* f = fopen(path, "rb");
  if (!f) return fprintf(stderr, "%s: cannot open\n", path), NULL;
  unsigned char pre[10];
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
    fclose(f);
    return fprintf(stderr, "%s: not a .npy file\n", path), NULL;
  }
  const unsigned header = pre[8] | (unsigned)pre[9] << 8; /* version 1.0 */
  char* h = malloc(header + 1);
  if (!h || fread(h, 1, header, f) != header) {
    fclose(f);
    free(h);
    return fprintf(stderr, "%s: truncated header\n", path), NULL;
  }
  h[header] = 0;
  const int ok = strstr(h, "'<f4'") != NULL && strstr(h, "'fortran_order': False") != NULL;
  free(h);
  float* x = malloc(sizeof(float) * (size_t)elements);
  if (!ok || !x || fread(x, sizeof(float), (size_t)elements, f) != (size_t)elements) {
    fclose(f);
    free(x);
    return fprintf(stderr, "%s: expected %ld float32 values in C order\n", path, elements), NULL;
  }
  fclose(f);
  return x;
}

static int write_npy(const char* path, const float* y, const long* shape, int rank) {
  char dims[128] = "";
  for (int i = 0; i < rank; ++i)
    snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%ld%s", shape[i],
             rank == 1 ? "," : i + 1 < rank ? ", " : "");
  char header[256];
  int n = snprintf(header, sizeof header,
                   "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
  while ((10 + n + 1) % 64) header[n++] = ' ';
  header[n++] = '\n';
  long elements = 1;
  for (int i = 0; i < rank; ++i) elements *= shape[i];
  FILE* f = fopen(path, "wb");
  if (!f) return fprintf(stderr, "%s: cannot write\n", path), 1;
  const unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n & 255),
                                 (unsigned char)(n >> 8)};
  fwrite(pre, 1, 10, f);
  fwrite(header, 1, (size_t)n, f);
  fwrite(y, sizeof(float), (size_t)elements, f);
  return fclose(f) != 0;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s WEIGHTS|- INPUT.npy OUTPUT.npy ('-': the embedded weights)\n",
            argv[0]);
    return 2;
  }
  API(_model)* model = API(_create)(strcmp(argv[1], "-") ? argv[1] : NULL);
  if (!model) return fprintf(stderr, "create: %s\n", API(_last_error)()), 1;
  float* x = read_npy(argv[2], CAT(NET, _INPUT0_ELEMENTS));
  float* y = malloc(sizeof(float) * CAT(NET, _OUTPUT0_ELEMENTS));
  if (!x || !y) return 1;
  const float* inputs[] = {x};
  float* outputs[] = {y};
  if (API(_run)(model, inputs, outputs) != 0)
    return fprintf(stderr, "run: %s\n", API(_error)(model)), 1;
  const long shape[] = CAT(NET, _OUTPUT0_SHAPE);
  const int failed = write_npy(argv[3], y, shape, CAT(NET, _OUTPUT0_RANK));
  API(_destroy)(model);
  free(x);
  free(y);
  return failed;
}
