// Runs Hikyuu's check (SpotAgent::parseFlatSpot: VerifySpotListBuffer) on each file named.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>
#include "spot_generated.h"
int main(int argc, char** argv) {
    int bad = 0;
    for (int i = 1; i < argc; ++i) {
        std::ifstream in(argv[i], std::ios::binary);
        std::vector<uint8_t> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        flatbuffers::Verifier verifier(buf.data(), buf.size());
        bool ok = hikyuu::flat::VerifySpotListBuffer(verifier);
        std::printf("%s %s\n", ok ? "OK" : "INVALID", argv[i]);
        bad += !ok;
    }
    return bad ? 1 : 0;
}
